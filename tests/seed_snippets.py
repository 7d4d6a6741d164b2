"""The side-by-side graphmint grew from, as it was written: PyTorch's SimpleNet trained eagerly, a model
with a custom `nn.Parameter` layer (5 → 10 → 2), and a Keras Sequential trained with a `@tf.function`
train_step. tests/test_train.py runs these as they are, then takes the same models through
`graphmint export` and `graphmint train-check`."""

import numpy as np
import tensorflow as tf
import torch
import torch.nn as nn
import torch.optim as optim

# --- PyTorch -----------------------------------------------------------------------------------------


class SimpleNet(nn.Module):
    def __init__(self):
        super(SimpleNet, self).__init__()  # noqa: UP008 (as the comparison writes it)
        self.fc1 = nn.Linear(10, 20)
        self.fc2 = nn.Linear(20, 2)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = self.fc2(x)
        return x


class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super(CustomLayer, self).__init__()  # noqa: UP008
        self.weight = nn.Parameter(torch.randn(in_features, out_features))

    def forward(self, x):
        return torch.matmul(x, self.weight)


class ModelWithCustom(nn.Module):
    def __init__(self):
        super(ModelWithCustom, self).__init__()  # noqa: UP008
        self.custom = CustomLayer(5, 10)
        self.fc = nn.Linear(10, 2)

    def forward(self, x):
        x = torch.relu(self.custom(x))
        return self.fc(x)


def torch_training(steps: int = 20) -> list[float]:
    """The eager training loop: zero_grad, forward, CrossEntropyLoss, backward, Adam step."""
    torch.manual_seed(0)
    inputs = torch.randn(32, 10)
    labels = torch.randint(0, 2, (32,))
    model = SimpleNet()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# --- TensorFlow --------------------------------------------------------------------------------------


def keras_model():
    return tf.keras.Sequential(
        [tf.keras.Input(shape=(10,)), tf.keras.layers.Dense(20, activation="relu"), tf.keras.layers.Dense(2)]
    )


def keras_training(steps: int = 20) -> list[float]:
    """The tf.function train_step: GradientTape, SparseCategoricalCrossentropy(from_logits=True), Adam."""
    tf.keras.utils.set_random_seed(0)
    x = np.random.randn(32, 10).astype("float32")
    y = np.random.randint(0, 2, size=(32,))
    model = keras_model()
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = tf.keras.optimizers.Adam(learning_rate=0.01)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_fn(y, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))  # noqa: B905
        return loss

    return [float(train_step(x, y)) for _ in range(steps)]
