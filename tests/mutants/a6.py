"""Mutants and alternatives for A6 (autoencoders); format in tests/mutants/README.md.

Mutants are anchored edits of the master's reference solutions (tests/mutants/derive.py).
"""

from __future__ import annotations

from mutants.derive import Reference

NOTEBOOK = "a6_autoencoders/a6_autoencoders.ipynb"

_REFERENCE = Reference(NOTEBOOK)
_edit = _REFERENCE.edit

# The reference solutions the mutants are edits of (tests/test_a6_content.py runs them against the master).
ENCODER, DECODER, AUTOENCODER, TRAIN, PLOT = (_REFERENCE[name] for name in (
    "Encoder", "Decoder", "Autoencoder", "train_autoencoder", "plot_reconstructions"))

_LATENT = "nn.Linear(h_dim[1], l_dim),\n"
_SECOND_HIDDEN = "nn.Linear(h_dim[0], h_dim[1]),\n"
_SIGMOID = "            nn.Sigmoid(),\n"
_BATCHES = "range(0, images.shape[0], batch_size)"
_PICTURES = "(images[i, 0], reconstructions[i, 0])"

MUTANTS = [
    # ---- Encoder
    ("Encoder", "ReLU at the latent", _edit("Encoder", (_LATENT, _LATENT + "            nn.ReLU(),\n"))),
    ("Encoder", "sigmoid at the latent", _edit("Encoder", (_LATENT, _LATENT + "            nn.Sigmoid(),\n"))),
    ("Encoder", "hidden sizes in the wrong order (s*s -> h1 -> h0)",
     _edit("Encoder", ("nn.Linear(s_img * s_img, h_dim[0])", "nn.Linear(s_img * s_img, h_dim[1])"),
           ("nn.Linear(h_dim[0], h_dim[1]),\n            nn.ReLU(),\n            nn.Linear(h_dim[1], l_dim)",
            "nn.Linear(h_dim[1], h_dim[0]),\n            nn.ReLU(),\n            nn.Linear(h_dim[0], l_dim)"))),
    ("Encoder", "second ReLU missing",
     _edit("Encoder", (_SECOND_HIDDEN + "            nn.ReLU(),\n", _SECOND_HIDDEN))),
    ("Encoder", "linear layers without bias",
     _edit("Encoder", *((f"nn.Linear({sizes})", f"nn.Linear({sizes}, bias=False)")
                        for sizes in ("s_img * s_img, h_dim[0]", "h_dim[0], h_dim[1]", "h_dim[1], l_dim")))),
    ("Encoder", "only one hidden layer (s*s -> h0 -> l)",
     _edit("Encoder", (f"{_SECOND_HIDDEN}            nn.ReLU(),\n            {_LATENT}",
                       "nn.Linear(h_dim[0], l_dim),\n"))),
    ("Encoder", "tanh instead of ReLU in the hidden layers",
     _edit("Encoder", ("h_dim[0]),\n            nn.ReLU(),", "h_dim[0]),\n            nn.Tanh(),"),
           ("h_dim[1]),\n            nn.ReLU(),", "h_dim[1]),\n            nn.Tanh(),"))),
    # ---- Decoder
    ("Decoder", "sigmoid missing", _edit("Decoder", (_SIGMOID, ""))),
    ("Decoder", "ReLU instead of sigmoid at the end", _edit("Decoder", (_SIGMOID, "            nn.ReLU(),\n"))),
    ("Decoder", "output not reshaped to an image",
     _edit("Decoder", ("return self.layers(z).reshape(-1, 1, self.s_img, self.s_img)", "return self.layers(z)"))),
    ("Decoder", "reshaped without the channel axis",
     _edit("Decoder", ("reshape(-1, 1, self.s_img, self.s_img)", "reshape(-1, self.s_img, self.s_img)"))),
    ("Decoder", "hidden sizes in the encoder's order (l -> h0 -> h1)",
     _edit("Decoder", ("nn.Linear(l_dim, h_dim[1]),", "nn.Linear(l_dim, h_dim[0]),"),
           ("nn.Linear(h_dim[1], h_dim[0]),", "nn.Linear(h_dim[0], h_dim[1]),"),
           ("nn.Linear(h_dim[0], s_img * s_img)", "nn.Linear(h_dim[1], s_img * s_img)"))),
    ("Decoder", "ReLU missing between the hidden layers",
     _edit("Decoder", ("nn.Linear(l_dim, h_dim[1]),\n            nn.ReLU(),\n", "nn.Linear(l_dim, h_dim[1]),\n"))),
    # ---- Autoencoder
    ("Autoencoder", "h_dim ignored: always [256, 128]",
     _edit("Autoencoder", ("Encoder(l_dim, s_img, h_dim)", "Encoder(l_dim, s_img, [256, 128])"),
           ("Decoder(l_dim, s_img, h_dim)", "Decoder(l_dim, s_img, [256, 128])"))),
    ("Autoencoder", "wrong default hidden sizes", _edit("Autoencoder", ("h_dim=[256, 128]", "h_dim=[128, 64]"))),
    ("Autoencoder", "forward returns the code, not the reconstruction",
     _edit("Autoencoder", ("return self.decoder(self.encoder(x))", "return self.encoder(x)"))),
    ("Autoencoder", "decoder built with the hidden sizes reversed",
     _edit("Autoencoder", ("Decoder(l_dim, s_img, h_dim)", "Decoder(l_dim, s_img, h_dim[::-1])"))),
    ("Autoencoder", "all parameters frozen (requires_grad off)",
     _edit("Autoencoder", ("        self.decoder = Decoder(l_dim, s_img, h_dim)\n",
                           "        self.decoder = Decoder(l_dim, s_img, h_dim)\n"
                           "        for p in self.parameters():\n            p.requires_grad_(False)\n"))),
    ("Autoencoder", "decoder receives a detached code (encoder never learns)",
     _edit("Autoencoder", ("self.decoder(self.encoder(x))", "self.decoder(self.encoder(x).detach())"))),
    # Right outputs, wrong gradients: caught only by the comparison of gradients on the reference's weights.
    ("Encoder", "input detached before the first layer (no gradient reaches the images)",
     _edit("Encoder", ("        return self.layers(x)\n", "        return self.layers(x.detach())\n"))),
    ("Decoder", "hidden activations detached after the first layer (it never learns)",
     _edit("Decoder", ("return self.layers(z).reshape(-1, 1, self.s_img, self.s_img)",
                       "hidden = self.layers[:2](z).detach()\n"
                       "        return self.layers[2:](hidden).reshape(-1, 1, self.s_img, self.s_img)"))),
    # ---- train_autoencoder
    ("train_autoencoder", "no optimiser step", _edit("train_autoencoder", ("            optimiser.step()\n", ""))),
    ("train_autoencoder", "gradients never cleared",
     _edit("train_autoencoder", ("            optimiser.zero_grad()\n", ""))),
    ("train_autoencoder", "learning rate ignored", _edit("train_autoencoder", ("lr=lr)", "lr=1e-3)"))),
    ("train_autoencoder", "SGD instead of Adam",
     _edit("train_autoencoder", ("torch.optim.Adam(", "torch.optim.SGD("))),
    ("train_autoencoder", "summed instead of mean squared error",
     _edit("train_autoencoder", ("nn.functional.mse_loss(model(batch), batch)",
                                 "nn.functional.mse_loss(model(batch), batch, reduction='sum')"))),
    ("train_autoencoder", "returns the loss of every batch",
     _edit("train_autoencoder", ("            batches += 1\n",
                                 "            batches += 1\n            epoch_means.append(loss.item())\n"),
           ("        epoch_means.append(total / batches)\n", ""))),
    ("train_autoencoder", "batch size ignored (whole data set in one batch)",
     _edit("train_autoencoder", (_BATCHES, "range(0, images.shape[0], images.shape[0])"),
           ("order[start:start + batch_size]", "order"))),
    ("train_autoencoder", "last partial batch dropped",
     _edit("train_autoencoder", (_BATCHES, "range(0, images.shape[0] - batch_size + 1, batch_size)"))),
    ("train_autoencoder", "one epoch too few",
     _edit("train_autoencoder", ("for _epoch in range(epochs):", "for _epoch in range(epochs - 1):"))),
    # Mistakes that a loss that falls does not reveal: caught step for step against the reference.
    ("train_autoencoder", "optimiser created again every epoch",
     _edit("train_autoencoder", ("    optimiser = torch.optim.Adam(model.parameters(), lr=lr)\n", ""),
           ("        order = torch.randperm(", "        optimiser = torch.optim.Adam(model.parameters(), lr=lr)\n"
                                            "        order = torch.randperm("))),
    ("train_autoencoder", "optimiser created again for every batch",
     _edit("train_autoencoder", ("    optimiser = torch.optim.Adam(model.parameters(), lr=lr)\n", ""),
           ("            loss = nn.functional.mse_loss(", "            optimiser = torch.optim.Adam(model.parameters(), "
                                                        "lr=lr)\n            loss = nn.functional.mse_loss("))),
    ("train_autoencoder", "no reshuffle: one random order for every epoch",
     _edit("train_autoencoder", ("        order = torch.randperm(images.shape[0])\n", ""),
           ("    epoch_means = []\n", "    epoch_means = []\n    order = torch.randperm(images.shape[0])\n"))),
    ("train_autoencoder", "model trained in eval mode", _edit("train_autoencoder", ("model.train()", "model.eval()"))),
    ("train_autoencoder", "returns the last batch's loss of each epoch",
     _edit("train_autoencoder", ("epoch_means.append(total / batches)", "epoch_means.append(loss.item())"))),
    ("train_autoencoder", "losses summed as tensors: every batch's graph kept alive",
     _edit("train_autoencoder", ("total += loss.item()", "total = total + loss"))),
    # ---- plot_reconstructions
    ("plot_reconstructions", "returns nothing (plt.show() only)",
     _edit("plot_reconstructions", ("    return fig\n", "    plt.show()\n"))),
    ("plot_reconstructions", "the inputs shown in both rows",
     _edit("plot_reconstructions", (_PICTURES, "(images[i, 0], images[i, 0])"))),
    ("plot_reconstructions", "rows swapped (reconstructions on top)",
     _edit("plot_reconstructions", (_PICTURES, "(reconstructions[i, 0], images[i, 0])"))),
    ("plot_reconstructions", "one row of 2n pictures",
     _edit("plot_reconstructions", ("plt.subplots(2, n,", "plt.subplots(1, 2 * n,"),
           *((f"axes[row, i].{call}", f"axes[0, 2 * i + row].{call}")
             for call in ("imshow(", "set_xticks(", "set_yticks(")),
           ('axes[1, 0].set_ylabel("output")', 'axes[0, 1].set_ylabel("output")'))),
    ("plot_reconstructions", "reconstructions shifted by one column",
     _edit("plot_reconstructions", ("reconstructions[i, 0])", "reconstructions[(i + 1) % n, 0])"))),
    ("plot_reconstructions", "pictures rescaled to [-1, 1]",
     _edit("plot_reconstructions", ("picture.cpu().numpy()", "2 * picture.cpu().numpy() - 1"))),
]

ALTERNATIVES = [
    ("Encoder", "explicit layers, x.view and functional ReLU",
     '''class Encoder(nn.Module):
    def __init__(self, l_dim, s_img, h_dim):
        super().__init__()
        self.fc1 = nn.Linear(s_img ** 2, h_dim[0])
        self.fc2 = nn.Linear(h_dim[0], h_dim[1])
        self.to_latent = nn.Linear(h_dim[1], l_dim)

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        x = torch.relu(self.fc1(x))
        x = nn.functional.relu(self.fc2(x))
        return self.to_latent(x)
'''),
    ("Encoder", "nn.ModuleList built in a loop",
     '''class Encoder(nn.Module):
    def __init__(self, l_dim, s_img, h_dim):
        super().__init__()
        sizes = [s_img * s_img, *h_dim, l_dim]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        x = torch.flatten(x, start_dim=1)
        for layer in self.linears[:-1]:
            x = layer(x).clamp_min(0)
        return self.linears[-1](x)
'''),
    ("Decoder", "explicit layers, nn.Unflatten",
     '''class Decoder(nn.Module):
    def __init__(self, l_dim, s_img, h_dim):
        super().__init__()
        self.fc1 = nn.Linear(l_dim, h_dim[1])
        self.fc2 = nn.Linear(h_dim[1], h_dim[0])
        self.fc3 = nn.Linear(h_dim[0], s_img * s_img)
        self.unflatten = nn.Unflatten(1, (1, s_img, s_img))

    def forward(self, z):
        h = torch.relu(self.fc1(z))
        h = torch.relu(self.fc2(h))
        return self.unflatten(torch.sigmoid(self.fc3(h)))
'''),
    ("Decoder", "sigmoid written out, view with the batch size",
     '''class Decoder(nn.Module):
    def __init__(self, l_dim, s_img, h_dim):
        super().__init__()
        self.side = s_img
        self.net = nn.Sequential(nn.Linear(l_dim, h_dim[1]), nn.ReLU(), nn.Linear(h_dim[1], h_dim[0]), nn.ReLU(),
                                 nn.Linear(h_dim[0], s_img * s_img))

    def forward(self, z):
        pixels = 1 / (1 + torch.exp(-self.net(z)))
        return pixels.view(z.shape[0], 1, self.side, self.side)
'''),
    ("Autoencoder", "tuple default and an encode/decode split",
     '''class Autoencoder(nn.Module):
    def __init__(self, l_dim, s_img, h_dim=(256, 128)):
        super().__init__()
        h_dim = list(h_dim)
        self.encoder = Encoder(l_dim=l_dim, s_img=s_img, h_dim=h_dim)
        self.decoder = Decoder(l_dim=l_dim, s_img=s_img, h_dim=h_dim)

    def encode(self, x):
        return self.encoder(x)

    def forward(self, x):
        code = self.encode(x)
        return self.decoder(code)
'''),
    ("train_autoencoder", "DataLoader, zero_grad after the step, loss as a tensor mean",
     '''from torch.utils.data import DataLoader, TensorDataset


def train_autoencoder(model, images, epochs, batch_size=128, lr=1e-3):
    device = next(model.parameters()).device
    loader = DataLoader(TensorDataset(images), batch_size=batch_size, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        epoch_losses = []
        for (x,) in loader:
            x = x.to(device)
            loss = ((model(x) - x) ** 2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=False)
            epoch_losses.append(loss.detach())
        losses.append(torch.stack(epoch_losses).mean().item())
    return losses
'''),
    ("train_autoencoder", "torch.split of a permutation, statistics.mean, optimiser steps in a helper",
     '''import statistics


def train_autoencoder(model, images, epochs, batch_size=128, lr=1e-3):
    device = next(model.parameters()).device
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)

    def step(batch):
        optimiser.zero_grad()
        loss = ((model(batch) - batch) ** 2).mean()
        loss.backward()
        optimiser.step()
        return loss.item()

    model.train()
    result = []
    for _ in range(epochs):
        batches = torch.split(torch.randperm(len(images)), batch_size)
        result.append(statistics.mean(step(images[idx].to(device)) for idx in batches))
    return result
'''),
    ("plot_reconstructions", "axes from fig.add_subplot, model in eval mode, reshape",
     '''def plot_reconstructions(model, images):
    model.eval()
    with torch.no_grad():
        out = model(images).cpu()
    n, s = images.shape[0], images.shape[-1]
    fig = plt.figure(figsize=(n, 2))
    for i in range(n):
        top = fig.add_subplot(2, n, i + 1)
        top.imshow(images[i].reshape(s, s), cmap="gray")
        top.axis("off")
        bottom = fig.add_subplot(2, n, n + i + 1)
        bottom.imshow(out[i].reshape(s, s), cmap="gray")
        bottom.axis("off")
    return fig
'''),
]

# Mistakes the public checks alone must catch (tests/mutants/test_public_checks.py): more than "the loss
# goes down" is checked before the hand-in.
PUBLIC = [
    ("train_autoencoder", "gradients never cleared"),
    ("train_autoencoder", "SGD instead of Adam"),
    ("train_autoencoder", "summed instead of mean squared error"),
    ("train_autoencoder", "batch size ignored (whole data set in one batch)"),
    ("train_autoencoder", "last partial batch dropped"),
]
