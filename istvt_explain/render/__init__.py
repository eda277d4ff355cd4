"""Drawing: heatmap overlays and colour bars (``overlay``), timeline strips (``curves``), the figure style
(``style``), the paper figures (``figures``), key-frame files (``keyframes``) and a scan's HTML page
(``index``).  Renderers take explanations, arrays and rows, never a model or a pipeline."""
