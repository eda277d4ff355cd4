"""Explanations of ISTVT: what the model looked at, where in each frame and in which frames.

``explain(model, clips, method=...)`` returns an ``Explanation``; ``explain_batches`` does the same
for more clips than fit in one model call.  Methods are classes found by name (``registry``), each
with one ``attribute`` call; what is known about each (its label, whether its maps are signed, its
cost) is its ``facts`` (``catalogue``), readable without torch.  Names resolve on first use.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=['api', 'attention_methods', 'base', 'batching', 'captum_methods', 'capture', 'catalogue', 'explanation', 'lrp', 'propagation', 'registry'],
    submod_attrs={
        "api": ["explain"],
        "attention_methods": ["RawAttention", "Relevance", "Rollout", "SpatialOnly", "TemporalOnly"],
        "base": ["Attribution", "class_scores", "resolve_target"],
        "batching": ["explain_batches"],
        "captum_methods": ["FrameAblationMethod", "IntegratedGradientsMethod", "OcclusionMethod", "SaliencyMethod"],
        "capture": ["AttentionCapture"],
        "catalogue": ["BUILT_IN", "MethodFacts"],
        "explanation": ["DisplayScale", "Explanation"],
        "lrp": ["LRPAttribution", "RelevanceAccount", "lrp_rules"],
        "registry": ["METHODS", "available_methods", "get_method", "method_facts", "register_method",
                     "resolve_method"],
    },
)
