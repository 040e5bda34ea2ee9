"""Readers for MRI volumes, tumour masks, whole-slide images, and case manifests."""
