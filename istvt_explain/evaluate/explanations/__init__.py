"""Judging explanations: does a method's map follow the model (sanity), point where the evidence is
(faithfulness, temporal), land on the manipulated region (localisation)?  ``judge_explanations`` runs
them all with verdicts; ``data`` builds judging sets, ``report`` writes the tables and figures."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["data", "faithfulness", "judge", "localisation", "report", "sanity"],
    submod_attrs={
        "judge": ["CRITERIA", "JudgingResult", "JudgingSettings", "judge_explanations", "judging_options"],
    },
)
