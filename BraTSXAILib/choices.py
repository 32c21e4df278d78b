"""The values the command line offers, in a module that imports nothing, so that `brats-xai --help` and every
subcommand's `--help` answer at once (torch, MONAI and OpenVINO are imported only by the commands that run).
The modules that use these values import them from here."""

ARCHITECTURES = ("unet", "resunet", "attunet")  # the three networks, as --model names them
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "float32", "bf16")
BACKENDS = ("auto", "torch", "openvino")
MODALITIES = ("t1", "t1ce", "t2", "flair")  # the networks' input channels, in this order
ET_LABELS = (4, 3)  # enhancing-tumour label value: BraTS 2018-2021, BraTS 2023+
CAM_METHODS = ("gradcam", "hirescam", "gradcam++", "layercam")
LAYER_PRESETS = ("bottleneck", "decoder.3", "decoder.2", "decoder.1", "decoder.0.conv", "decoder.0", "final")
DEFAULT_LAYER = "decoder.1"
DEFAULT_FLIPS = 0  # flips added no AUROC on the validation cases (docs/uncertainty.md): the networks suffice
BASELINES = ("blur", "zero")  # what deleted voxels become in the deletion/insertion curves
MIN_STEPS = 10
