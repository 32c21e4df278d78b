"""Each network must learn a small planted tumour (edema shell, core, enhancing rim) to Dice > 0.9 per region."""
import numpy as np
import pytest
import torch

from BraTSXAILib.labels import REGIONS, labels_to_regions
from BraTSXAILib.losses import BCEDiceLoss
from BraTSXAILib.metrics import dice
from BraTSXAILib.models import ARCHITECTURES, build_model

MAX_STEPS = 200


def planted_tumour(size=32, seed=0):
    """Concentric spheres: edema (label 2) r≤12, enhancing rim (4) r≤8, necrotic core (1) r≤4, with MRI-like contrasts."""
    rng = np.random.default_rng(seed)
    grid = np.indices((size,) * 3) - (size - 1) / 2 - np.array([2, -1, 1])[:, None, None, None]
    radius = np.sqrt((grid**2).sum(0))
    labels = np.zeros((size,) * 3, np.uint8)
    labels[radius <= 12] = 2
    labels[radius <= 8] = 4
    labels[radius <= 4] = 1
    #                      bg   ncr  ed   -   et
    contrast = {"t1": [0.6, 0.2, 0.4, 0, 0.4], "t1ce": [0.6, 0.1, 0.4, 0, 1.0],
                "t2": [0.4, 0.9, 0.8, 0, 0.6], "flair": [0.4, 0.3, 0.9, 0, 0.6]}
    image = np.stack([np.asarray(values)[labels] for values in contrast.values()]).astype(np.float32)
    image += rng.normal(0, 0.05, image.shape).astype(np.float32)
    target = labels_to_regions(labels).astype(np.float32)
    return torch.from_numpy(image)[None], torch.from_numpy(target)[None]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_network_overfits_planted_tumour(architecture):
    torch.manual_seed(0)
    image, target = planted_tumour()
    model = build_model(architecture, width=8)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = BCEDiceLoss()
    for step in range(1, MAX_STEPS + 1):
        optimiser.zero_grad()
        logits = model(image)
        loss_fn(logits, target).backward()
        optimiser.step()
        if step % 10 == 0:
            prediction = (logits.detach() > 0).numpy()[0]
            scores = [dice(prediction[i], target.numpy()[0, i] > 0) for i in range(3)]
            if min(scores) > 0.9:
                break
    print(f"{architecture}: {step} steps, Dice " + ", ".join(f"{r} {s:.3f}" for r, s in zip(REGIONS, scores)))
    assert min(scores) > 0.9
