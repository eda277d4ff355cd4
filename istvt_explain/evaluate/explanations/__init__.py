"""Judging explanations: does a method's map follow the model and repeat itself (sanity), point where the
evidence is (deletion, insertion, temporal), land on the manipulated region better than a prior that reads
no model (pointing), hold still under perturbations (robustness)?  ``criteria`` holds one class per
criterion, ``judge_explanations`` runs them with verdicts corrected over the run, ``references`` holds the
priors and the known-bad maps every run can judge beside the methods, ``data`` builds judging sets from
held-out people, ``report`` writes the tables and figures."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["complexity", "context", "criteria", "data", "faithfulness", "imputation", "judge", "localisation",
                "references", "report", "robustness", "sanity", "temporal"],
    submod_attrs={
        "criteria": ["CRITERIA", "JUDGED", "Criterion", "Measurement"],
        "data": ["JudgingSet", "heldout_judging_set", "pseudofake_judging_set"],
        "judge": ["JudgingResult", "JudgingSettings", "judge_explanations", "judging_options"],
        "references": ["FOOLS", "CentrePrior", "FreshNoise", "NegatedRelevance", "centre_prior"],
    },
)
