"""Built-in physiology "models", described as data (read by :mod:`emonb.models`).

They have no weights: the specs make the signal-processing pipelines visible in
``eb.models.list_models("physio")`` with their license, citation and limits, and their factories
return the analysis function with the spec's parameters bound.
"""

from __future__ import annotations

from ..spec import ModelSpec

NEUROKIT = ModelSpec(
    name="neurokit2-physio",
    modality="physio",
    task="biosignal_features",
    runtime="python",
    factory="emonb.models.physio.specs:build",
    outputs=("ecg_rate", "ecg_rmssd", "ecg_sdnn", "ecg_hf", "ecg_lf", "ppg_rate", "eda_tonic", "eda_phasic",
             "scr", "rsp_rate", "rsp_amplitude", "emg_amplitude", "physio_arousal"),
    license="MIT",
    citation=("Makowski et al. (2021) NeuroKit2: A Python toolbox for neurophysiological signal processing. "
              "Behavior Research Methods 53:1689-1696; Kleckner et al. (2018) IEEE TBME 65(7) (EDA quality); "
              "Orphanidou et al. (2015) IEEE JBHI 19(3) (beat-template quality); Kreibig (2010) Biol. "
              "Psychol. 84:394-421 (arousal)."),
    training_data="none (signal processing, no learned weights)",
    limitations=("physio_arousal is a within-session index (robust z-scores), not comparable across people; "
                 "HF needs HRV windows >= 60 s and LF >= 120 s; ECG >= 50 Hz, EMG >= 250 Hz; the EDA level "
                 "rule applies only to channels in microsiemens."),
    description="ECG/PPG/EDA/RSP/EMG cleaning, peaks, rates, HRV, SCRs, quality flags and arousal via NeuroKit2.",
    params={"kind": "analyze"},
)

RPPG_POS = ModelSpec(
    name="rppg-pos",
    modality="physio",
    task="remote_ppg",
    runtime="python",
    factory="emonb.models.physio.specs:build",
    outputs=("rppg_pulse", "rppg_rate", "rppg_quality"),
    license="MIT (emonb implementation)",
    citation=("Wang, den Brinker, Stuijk & de Haan (2017) Algorithmic principles of remote PPG. "
              "IEEE TBME 64(7):1479-1491"),
    training_data="none (signal processing)",
    limitations=("needs a still, frontal, well-lit face for >= 10 s; compression (low bitrate H.264), "
                 "motion, make-up and flicker degrade it; validated here on synthetic pulsing skin only."),
    description="Pulse and heart rate from the skin colour of forehead and cheeks (face mesh ROIs), POS method.",
    params={"kind": "rppg", "method": "pos"},
)

RPPG_CHROM = RPPG_POS.replace(
    name="rppg-chrom",
    citation=("de Haan & Jeanne (2013) Robust pulse rate from chrominance-based rPPG. "
              "IEEE TBME 60(10):2878-2886"),
    description="Pulse and heart rate from the skin colour of forehead and cheeks, CHROM method.",
    params={"kind": "rppg", "method": "chrom"},
)

SPECS = [NEUROKIT, RPPG_POS, RPPG_CHROM]


def build(spec, *, device: str = "auto", kind: str = "analyze", **params):
    """The analysis function of ``spec`` with its parameters bound (CPU only)."""
    import functools

    if kind == "rppg":
        from .remote_ppg import rppg

        return functools.partial(rppg, **params)
    from .analyze import analyze_physio

    return functools.partial(analyze_physio, **params)
