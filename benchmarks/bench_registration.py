"""Registration time and accuracy per pair on real MRI, ours against SimpleITK's standard recipe.

Pairs (full resolution, default levels 8 → 1 mm, ``--threads`` SimpleITK threads):

* ``moved``: a real volume and its copy moved by a known rigid motion (15–20° about a random axis,
  15–20 mm), on another grid, with another (non-monotone) contrast and Rician noise
  (``core/synth/motion.py: known_motion_pair``) — STS_001 T1 (DICOM 512²×40 and the NIfTI
  174×158×59, from ../shared/data) and nibabel's EPI (example4d, 128×96×24);
* ``unmoved``: the same without motion (the answer is the identity);
* ``scanner``: STS_001 T2 onto T1 (one session, one frame of reference: near the identity);
* ``content``: the STS_001 NIfTI onto the DICOM series (another frame, 566 mm away: ``init=moments``;
  no known answer, the verdict and time only);
* ``phantom``: a phantom's post-treatment T1 onto its pre-treatment T1 (``make_case(motion=True)``).

TRE = distance between where the estimate and the truth send the fixed foreground's points (mean
and max, mm). The peer, run on the same pairs in the same process, is the recipe of SimpleITK's
registration notebooks: CenteredTransformInitializer (moments) → Euler3D, Mattes MI (50 bins, 1 %
random samples), gradient descent (learning rate 1, 100 iterations, convergence window 10) with
physical-shift scales, shrink factors 4/2/1 with smoothing 2/1/0 mm.

    python benchmarks/bench_registration.py [--pairs moved,unmoved,scanner,content,phantom] [--threads 2] [--seeds 1,2]
        [--mode affine] [--no-peer]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("HARM3_SHARED_DATA", ROOT.parent / "shared" / "data")) / "real" / "mri"


def nibabel_epi():
    import nibabel as nib

    from napari_harm3.core.io.mri import Volume, nifti_affine_to_lps

    path = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
    image = nib.load(str(path))
    data = np.asanyarray(image.dataobj)[..., 0].astype(np.float32)
    return Volume(np.ascontiguousarray(data.transpose(2, 1, 0)), nifti_affine_to_lps(image.affine), "example4d", str(path))


def sitk_recipe(fixed, moving):
    """The peer: SimpleITK's notebook recipe (see the module docstring); returns (WorldTransform, seconds)."""
    import SimpleITK as sitk

    from napari_harm3.core.mri.registration_images import volume_to_sitk
    from napari_harm3.core.mri.transforms import WorldTransform, itk_to_world, sitk_to_matrix

    start = time.perf_counter()
    f, m = volume_to_sitk(fixed), volume_to_sitk(moving)
    initial = sitk.CenteredTransformInitializer(f, m, sitk.Euler3DTransform(),
                                                sitk.CenteredTransformInitializerFilter.MOMENTS)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.01, 1)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsGradientDescent(learningRate=1.0, numberOfIterations=100, convergenceMinimumValue=1e-6,
                                         convergenceWindowSize=10)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(initial, inPlace=False)
    out = method.Execute(f, m)
    return WorldTransform(itk_to_world(sitk_to_matrix(out))), time.perf_counter() - start


def pairs(names, seeds):
    """(label, fixed, moving, truth or None, config overrides) per pair."""
    from napari_harm3.core.io.mri import read_volume
    from napari_harm3.core.mri.transforms import WorldTransform
    from napari_harm3.core.synth.motion import known_motion_pair

    volumes = {}

    def real(name):
        if name not in volumes:
            volumes[name] = nibabel_epi() if name == "nibabel EPI" else read_volume(
                {"STS T1 DICOM": SHARED / "sts001_dicom" / "T1", "STS T2 DICOM": SHARED / "sts001_dicom" / "T2",
                 "STS T1 NIfTI": SHARED / "sts001_nifti" / "t1.nii.gz"}[name])
        return volumes[name]

    for name in ("STS T1 DICOM", "STS T1 NIfTI", "nibabel EPI"):
        if "moved" in names:
            for seed in seeds:
                moving, truth = known_motion_pair(real(name), seed)
                yield f"moved {name} (seed {seed})", real(name), moving, truth, {}
        if "unmoved" in names:
            moving, truth = known_motion_pair(real(name), 100, moved=False)
            yield f"unmoved {name}", real(name), moving, truth, {}
    if "scanner" in names:
        yield "scanner STS T2 → T1", real("STS T1 DICOM"), real("STS T2 DICOM"), WorldTransform.identity(), {}
    if "content" in names:
        yield "content STS NIfTI → DICOM", real("STS T1 DICOM"), real("STS T1 NIfTI"), None, {"init": "moments"}
    if "phantom" in names:
        from napari_harm3.core.synth.cohort import make_case

        for seed in seeds:
            case = make_case(Path(tempfile.mkdtemp()) / "case", 500 + seed, "demo", motion=True, slide=False)
            truth = WorldTransform(np.array(case.synthetic["motion"]["t1_pre_to_post_zyx"]))
            yield (f"phantom demo T1 post → pre (seed {500 + seed})", read_volume(case.mri["t1_pre"]),
                   read_volume(case.mri["t1_post"]), truth, {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="moved,unmoved,scanner,content,phantom")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--levels", default="8,4,2,1")
    parser.add_argument("--mode", default="rigid", choices=("rigid", "affine"))
    parser.add_argument("--no-peer", action="store_true", help="skip SimpleITK's recipe")
    args = parser.parse_args()

    import SimpleITK as sitk

    from napari_harm3.core.mri.registration import RegistrationConfig, register_volumes
    from napari_harm3.core.mri.registration_images import target_registration_error, volume_foreground_points

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    levels = tuple(float(v) for v in args.levels.split(","))
    print(f"SimpleITK {sitk.Version.VersionString()}, {args.mode}, {args.threads} threads, levels {levels} mm; "
          f"load average before: {os.getloadavg()[0]:.1f} (the machine is shared: times vary with it)")
    print(f"{'pair':44s} {'ours s':>7s} {'TRE mean':>9s} {'max':>6s}  {'verdict':34s} {'peer s':>7s} {'peer TRE':>9s} {'max':>6s}")
    worst_time = 0.0
    for label, fixed, moving, truth, overrides in pairs(set(args.pairs.split(",")), [int(s) for s in args.seeds.split(",")]):
        result = register_volumes(fixed, moving, RegistrationConfig(levels_mm=levels, threads=args.threads, mode=args.mode,
                                                                       **overrides))
        worst_time = max(worst_time, result.seconds)
        points = volume_foreground_points(fixed) if truth is not None else None
        ours = target_registration_error(result.transform, truth, points) if truth is not None else None
        verdict = ("plausible" if result.plausible else "IMPLAUSIBLE") + \
            f" {result.transform.rotation_degrees:.1f}° Dice {result.verdict.checks.get('dice', 0):.2f}"
        peer_text = ""
        if not args.no_peer and truth is not None and not overrides:
            peer, seconds = sitk_recipe(fixed, moving)
            errors = target_registration_error(peer, truth, points)
            peer_text = f"{seconds:7.1f} {errors.mean():9.2f} {errors.max():6.2f}"
        ours_text = f"{ours.mean():9.3f} {ours.max():6.3f}" if ours is not None else f"{'n/a':>9s} {'':6s}"
        print(f"{label:44s} {result.seconds:7.1f} {ours_text}  {verdict:34s} {peer_text}", flush=True)
    print(f"slowest pair (ours): {worst_time:.1f} s; load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
