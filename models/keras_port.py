"""The same VGG16 in Keras (TensorFlow backend), with the trained PyTorch weights copied in.

TensorFlow is needed only for the TFLite conversion; training happens in PyTorch (see MODEL_CARD.md for why).
"""

from __future__ import annotations

import numpy as np

from models.fer import PIXEL_MEAN, PIXEL_STD
from models.vgg16_torch import BLOCKS, DROPOUT, HEAD_WIDTH

BN_EPSILON = 1e-5  # PyTorch's default


def build_keras(num_classes: int = 7):
    import keras
    from keras import layers

    inputs = keras.Input((48, 48, 1), name="pixels")
    x = layers.Rescaling(1 / PIXEL_STD, offset=-PIXEL_MEAN / PIXEL_STD, name="normalise")(inputs)
    for b, block in enumerate(BLOCKS, 1):
        for c, width in enumerate(block, 1):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"block{b}_conv{c}")(x)
            x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"block{b}_bn{c}")(x)
            x = layers.ReLU(name=f"block{b}_relu{c}")(x)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(HEAD_WIDTH, activation="relu", name="fc1")(x)
    x = layers.Dropout(DROPOUT)(x)
    x = layers.Dense(HEAD_WIDTH, activation="relu", name="fc2")(x)
    x = layers.Dropout(DROPOUT)(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probabilities")(x)
    return keras.Model(inputs, outputs, name="vgg16_fer2013")


def copy_weights(state: dict, model) -> None:
    """Copy a models.vgg16_torch.VGG16 state_dict into build_keras()'s model."""
    convs = sorted(
        {k.rsplit(".", 1)[0] for k in state if k.startswith("features.") and state[k].ndim == 4},
        key=lambda k: int(k.split(".")[1]),
    )
    names = [
        (f"block{b}_conv{c}", f"block{b}_bn{c}") for b, block in enumerate(BLOCKS, 1) for c in range(1, len(block) + 1)
    ]
    assert len(convs) == len(names), "the checkpoint is not this VGG16"
    for key, (conv_name, bn_name) in zip(convs, names):
        bn_key = f"features.{int(key.split('.')[1]) + 1}"
        model.get_layer(conv_name).set_weights([state[f"{key}.weight"].numpy().transpose(2, 3, 1, 0)])
        model.get_layer(bn_name).set_weights(
            [state[f"{bn_key}.{p}"].numpy() for p in ("weight", "bias", "running_mean", "running_var")]
        )
    linears = sorted(
        {k.rsplit(".", 1)[0] for k in state if k.startswith("head.") and state[k].ndim == 2},
        key=lambda k: int(k.split(".")[1]),
    )
    for key, name in zip(linears, ("fc1", "fc2", "logits")):
        model.get_layer(name).set_weights([state[f"{key}.weight"].numpy().T, state[f"{key}.bias"].numpy()])


def keras_from_checkpoint(path, logit_shift=None):
    """The checkpoint as a Keras model; `logit_shift` (7 numbers) is added to the last layer's bias."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)["model"]
    state = {k: v.float() for k, v in state.items()}
    last = max(
        (k for k in state if k.startswith("head.") and k.endswith(".weight")), key=lambda k: int(k.split(".")[1])
    )
    if logit_shift is not None:
        bias = last.replace(".weight", ".bias")
        state[bias] = state[bias] + torch.as_tensor(logit_shift, dtype=torch.float32)
    model = build_keras(state[last].shape[0])
    copy_weights(state, model)
    return model


def torch_keras_gap(path, faces: np.ndarray) -> float:
    """Largest absolute probability difference between the PyTorch and Keras models on some faces."""
    import torch

    from models.vgg16_torch import VGG16

    net = VGG16()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["model"])
    net.eval()
    with torch.no_grad():
        p_torch = torch.softmax(net(torch.from_numpy(faces).float().unsqueeze(1)), 1).numpy()
    p_keras = keras_from_checkpoint(path).predict(faces[..., None].astype(np.float32), verbose=0)
    return float(np.abs(p_torch - p_keras).max())
