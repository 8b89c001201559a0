"""Mutants and alternatives for A6 (autoencoders)."""

NOTEBOOK = "a6_autoencoders/a6_autoencoders.ipynb"


def _swap(source: str, old: str, new: str) -> str:
    """``source`` with ``old`` replaced once; fails loudly if ``old`` is not there."""
    assert source.count(old) == 1, f"mutant anchor not found exactly once: {old!r}"
    return source.replace(old, new)


ENCODER = '''class Encoder(nn.Module):
    def __init__(self, l_dim, s_img, h_dim):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(s_img * s_img, h_dim[0]),
            nn.ReLU(),
            nn.Linear(h_dim[0], h_dim[1]),
            nn.ReLU(),
            nn.Linear(h_dim[1], l_dim),
        )

    def forward(self, x):
        return self.layers(x)
'''

DECODER = '''class Decoder(nn.Module):
    def __init__(self, l_dim, s_img, h_dim):
        super().__init__()
        self.s_img = s_img
        self.layers = nn.Sequential(
            nn.Linear(l_dim, h_dim[1]),
            nn.ReLU(),
            nn.Linear(h_dim[1], h_dim[0]),
            nn.ReLU(),
            nn.Linear(h_dim[0], s_img * s_img),
            nn.Sigmoid(),
        )

    def forward(self, z):
        return self.layers(z).reshape(-1, 1, self.s_img, self.s_img)
'''

AUTOENCODER = '''class Autoencoder(nn.Module):
    def __init__(self, l_dim, s_img, h_dim=[256, 128]):
        super().__init__()
        self.encoder = Encoder(l_dim, s_img, h_dim)
        self.decoder = Decoder(l_dim, s_img, h_dim)

    def forward(self, x):
        return self.decoder(self.encoder(x))
'''

TRAIN = '''def train_autoencoder(model, images, epochs, batch_size=128, lr=1e-3):
    device = next(model.parameters()).device
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    epoch_means = []
    for _epoch in range(epochs):
        order = torch.randperm(images.shape[0])
        total, batches = 0.0, 0
        for start in range(0, images.shape[0], batch_size):
            batch = images[order[start:start + batch_size]].to(device)
            loss = nn.functional.mse_loss(model(batch), batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item()
            batches += 1
        epoch_means.append(total / batches)
    return epoch_means
'''

PLOT = '''def plot_reconstructions(model, images):
    with torch.no_grad():
        reconstructions = model(images)
    n = images.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.6), squeeze=False)
    for i in range(n):
        for row, picture in enumerate((images[i, 0], reconstructions[i, 0])):
            axes[row, i].imshow(picture.cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            axes[row, i].set_xticks([])
            axes[row, i].set_yticks([])
    return fig
'''

MUTANTS = [
    # ---- Encoder
    ("Encoder", "ReLU at the latent",
     _swap(ENCODER, "nn.Linear(h_dim[1], l_dim),\n", "nn.Linear(h_dim[1], l_dim),\n            nn.ReLU(),\n")),
    ("Encoder", "sigmoid at the latent",
     _swap(ENCODER, "nn.Linear(h_dim[1], l_dim),\n", "nn.Linear(h_dim[1], l_dim),\n            nn.Sigmoid(),\n")),
    ("Encoder", "hidden sizes in the wrong order (s*s -> h1 -> h0)",
     _swap(_swap(ENCODER, "nn.Linear(s_img * s_img, h_dim[0])", "nn.Linear(s_img * s_img, h_dim[1])"),
           "nn.Linear(h_dim[0], h_dim[1]),\n            nn.ReLU(),\n            nn.Linear(h_dim[1], l_dim)",
           "nn.Linear(h_dim[1], h_dim[0]),\n            nn.ReLU(),\n            nn.Linear(h_dim[0], l_dim)")),
    ("Encoder", "second ReLU missing",
     _swap(ENCODER, "nn.Linear(h_dim[0], h_dim[1]),\n            nn.ReLU(),\n", "nn.Linear(h_dim[0], h_dim[1]),\n")),
    ("Encoder", "linear layers without bias",
     ENCODER.replace("),\n", ", bias=False),\n").replace("nn.ReLU(, bias=False)", "nn.ReLU()")
     .replace("nn.Flatten(, bias=False)", "nn.Flatten()")),
    ("Encoder", "only one hidden layer (s*s -> h0 -> l)",
     _swap(ENCODER, "nn.Linear(h_dim[0], h_dim[1]),\n            nn.ReLU(),\n            nn.Linear(h_dim[1], l_dim)",
           "nn.Linear(h_dim[0], l_dim)")),
    ("Encoder", "tanh instead of ReLU in the hidden layers",
     ENCODER.replace("nn.ReLU()", "nn.Tanh()")),
    # ---- Decoder
    ("Decoder", "sigmoid missing",
     _swap(DECODER, "            nn.Sigmoid(),\n", "")),
    ("Decoder", "ReLU instead of sigmoid at the end",
     _swap(DECODER, "            nn.Sigmoid(),\n", "            nn.ReLU(),\n")),
    ("Decoder", "output not reshaped to an image",
     _swap(DECODER, "return self.layers(z).reshape(-1, 1, self.s_img, self.s_img)", "return self.layers(z)")),
    ("Decoder", "reshaped without the channel axis",
     _swap(DECODER, "reshape(-1, 1, self.s_img, self.s_img)", "reshape(-1, self.s_img, self.s_img)")),
    ("Decoder", "hidden sizes in the encoder's order (l -> h0 -> h1)",
     _swap(_swap(DECODER, "nn.Linear(l_dim, h_dim[1]),\n            nn.ReLU(),\n            nn.Linear(h_dim[1], h_dim[0])",
                 "nn.Linear(l_dim, h_dim[0]),\n            nn.ReLU(),\n            nn.Linear(h_dim[0], h_dim[1])"),
           "nn.Linear(h_dim[0], s_img * s_img)", "nn.Linear(h_dim[1], s_img * s_img)")),
    ("Decoder", "ReLU missing between the hidden layers",
     _swap(DECODER, "nn.Linear(l_dim, h_dim[1]),\n            nn.ReLU(),\n", "nn.Linear(l_dim, h_dim[1]),\n")),
    # ---- Autoencoder
    ("Autoencoder", "h_dim ignored: always [256, 128]",
     AUTOENCODER.replace("s_img, h_dim)", "s_img, [256, 128])")),
    ("Autoencoder", "wrong default hidden sizes",
     _swap(AUTOENCODER, "h_dim=[256, 128]", "h_dim=[128, 64]")),
    ("Autoencoder", "forward returns the code, not the reconstruction",
     _swap(AUTOENCODER, "return self.decoder(self.encoder(x))", "return self.encoder(x)")),
    ("Autoencoder", "decoder built with the hidden sizes reversed",
     _swap(AUTOENCODER, "Decoder(l_dim, s_img, h_dim)", "Decoder(l_dim, s_img, h_dim[::-1])")),
    ("Autoencoder", "all parameters frozen (requires_grad off)",
     _swap(AUTOENCODER, "        self.decoder = Decoder(l_dim, s_img, h_dim)\n",
           "        self.decoder = Decoder(l_dim, s_img, h_dim)\n"
           "        for p in self.parameters():\n            p.requires_grad_(False)\n")),
    ("Autoencoder", "decoder receives a detached code (encoder never learns)",
     _swap(AUTOENCODER, "self.decoder(self.encoder(x))", "self.decoder(self.encoder(x).detach())")),
    # ---- train_autoencoder
    ("train_autoencoder", "no optimiser step",
     _swap(TRAIN, "            optimiser.step()\n", "")),
    ("train_autoencoder", "gradients never cleared",
     _swap(TRAIN, "            optimiser.zero_grad()\n", "")),
    ("train_autoencoder", "learning rate ignored",
     _swap(TRAIN, "lr=lr)", "lr=1e-3)")),
    ("train_autoencoder", "SGD instead of Adam",
     _swap(TRAIN, "torch.optim.Adam(", "torch.optim.SGD(")),
    ("train_autoencoder", "summed instead of mean squared error",
     _swap(TRAIN, "nn.functional.mse_loss(model(batch), batch)",
           "nn.functional.mse_loss(model(batch), batch, reduction='sum')")),
    ("train_autoencoder", "returns the loss of every batch",
     _swap(_swap(TRAIN, "            batches += 1\n", "            batches += 1\n            epoch_means.append(loss.item())\n"),
           "        epoch_means.append(total / batches)\n", "")),
    ("train_autoencoder", "batch size ignored (whole data set in one batch)",
     _swap(_swap(TRAIN, "range(0, images.shape[0], batch_size)", "range(0, images.shape[0], images.shape[0])"),
           "order[start:start + batch_size]", "order")),
    ("train_autoencoder", "last partial batch dropped",
     _swap(TRAIN, "range(0, images.shape[0], batch_size)", "range(0, images.shape[0] - batch_size + 1, batch_size)")),
    ("train_autoencoder", "one epoch too few",
     _swap(TRAIN, "for _epoch in range(epochs):", "for _epoch in range(epochs - 1):")),
    # ---- plot_reconstructions
    ("plot_reconstructions", "returns nothing (plt.show() only)",
     _swap(PLOT, "    return fig\n", "    plt.show()\n")),
    ("plot_reconstructions", "the inputs shown in both rows",
     _swap(PLOT, "(images[i, 0], reconstructions[i, 0])", "(images[i, 0], images[i, 0])")),
    ("plot_reconstructions", "rows swapped (reconstructions on top)",
     _swap(PLOT, "(images[i, 0], reconstructions[i, 0])", "(reconstructions[i, 0], images[i, 0])")),
    ("plot_reconstructions", "one row of 2n pictures",
     _swap(PLOT, "plt.subplots(2, n,", "plt.subplots(1, 2 * n,").replace("axes[row, i]", "axes[0, 2 * i + row]")),
    ("plot_reconstructions", "reconstructions shifted by one column",
     _swap(PLOT, "reconstructions[i, 0])", "reconstructions[(i + 1) % n, 0])")),
    ("plot_reconstructions", "pictures rescaled to [-1, 1]",
     _swap(PLOT, "picture.cpu().numpy()", "2 * picture.cpu().numpy() - 1")),
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
