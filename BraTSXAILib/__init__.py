"""BraTSXAI library: brain tumour segmentation of T1/T1ce/T2/FLAIR MRI with explanations. Never imports Slicer."""
__version__ = "0.1.0"
