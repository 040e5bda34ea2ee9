"""The PACS, both ways (pynetdicom): find, retrieve into a case, send objects back.

Network use happens only in these modules and only to the peer of the PACS config file
(:mod:`.config`): C-FIND (:mod:`.query`), C-GET / C-MOVE (:mod:`.retrieve`, :mod:`.study_case`),
C-STORE (:mod:`.store`). Nothing here runs at import time.
"""
