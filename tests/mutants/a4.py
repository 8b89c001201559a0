"""Mutants and alternatives for A4 (convolutional networks); format in tests/mutants/README.md.

A4 has two master notebooks; ``tests/helpers.master_with_answer`` finds the one
that holds each answer cell. Mutants are anchored edits of the masters'
reference solutions (tests/mutants/derive.py), so they stay in step with them:
an edit whose anchor is no longer in the master fails loudly at import.
"""

from __future__ import annotations

from mutants.derive import Reference

NOTEBOOK = "a4_convnets/a4_convnets.ipynb"
NOTEBOOKS = ["a4_convnets/a4_convnets.ipynb", "a4_convnets/a4_vgg_cifar.ipynb"]

_REFERENCE = Reference(*NOTEBOOKS)
_edit, _body = _REFERENCE.edit, _REFERENCE.with_body

MUTANTS = [
    # ------------------------------------------------------------------ 1. Conv2d
    ("Conv2d", "stride ignored when cutting the window",
     _edit("Conv2d", ("padded[:, :, i * s:i * s + k, j * s:j * s + k]", "padded[:, :, i:i + k, j:j + k]"))),
    ("Conv2d", "all the padding on one side (bottom/right)",
     _edit("Conv2d", ("padded[:, :, p:p + h, p:p + w] = x", "padded[:, :, :h, :w] = x"))),
    ("Conv2d", "bias missing", _edit("Conv2d", (" + self.bias", ""))),
    ("Conv2d", "output size without the + 1 (last position dropped)",
     _edit("Conv2d", ("h_out = 1 + (h + 2 * p - k) // s", "h_out = (h + 2 * p - k) // s"),
           ("w_out = 1 + (w + 2 * p - k) // s", "w_out = (w + 2 * p - k) // s"))),
    ("Conv2d", "output size formula forgets the padding",
     _edit("Conv2d", ("h_out = 1 + (h + 2 * p - k) // s", "h_out = 1 + (h - k) // s"),
           ("w_out = 1 + (w + 2 * p - k) // s", "w_out = 1 + (w - k) // s"))),
    ("Conv2d", "height and width swapped in the output size",
     _edit("Conv2d", ("w_out = 1 + (w + 2 * p - k) // s", "w_out = 1 + (h + 2 * p - k) // s"))),
    ("Conv2d", "kernel flipped (true convolution instead of cross-correlation)",
     _edit("Conv2d", ("products = window.unsqueeze(1) * self.weight",
                      "products = window.unsqueeze(1) * self.weight.flip(-1, -2)"))),
    ("Conv2d", "forward calls torch.nn.functional.conv2d", _body("Conv2d", forward=
        "        # shortcut\n"
        "        return torch.nn.functional.conv2d(x, self.weight, self.bias, stride=self.stride, "
        "padding=self.padding)\n")),
    ("Conv2d", "forward uses F.unfold (im2col) instead of a loop", _body("Conv2d", forward=
        "        import torch.nn.functional as F\n"
        "        n, c, h, w = x.shape\n"
        "        k, s, p = self.kernel_size, self.stride, self.padding\n"
        "        h_out = 1 + (h + 2 * p - k) // s\n"
        "        w_out = 1 + (w + 2 * p - k) // s\n"
        "        columns = F.unfold(x, k, padding=p, stride=s)                  # (N, C*k*k, L)\n"
        "        out = self.weight.reshape(self.out_channels, -1) @ columns + self.bias[:, None]\n"
        "        return out.reshape(n, self.out_channels, h_out, w_out)\n")),
    ("Conv2d", "windows cut with Tensor.unfold", _body("Conv2d", forward=
        "        n, c, h, w = x.shape\n"
        "        k, s, p = self.kernel_size, self.stride, self.padding\n"
        "        padded = x.new_zeros(n, c, h + 2 * p, w + 2 * p)\n"
        "        padded[:, :, p:p + h, p:p + w] = x\n"
        "        windows = padded.unfold(2, k, s).unfold(3, k, s)              # (N, C, H', W', k, k)\n"
        "        return torch.einsum('nchwkl,dckl->ndhw', windows, self.weight) + self.bias.view(1, -1, 1, 1)\n")),
    ("Conv2d", "uses nn.Conv2d inside", _edit("Conv2d", (
        "        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))\n",
        "        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))\n"
        "        self.inner = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)\n"
        "        self.inner.weight = self.weight\n"
        "        self.inner.bias = self.bias\n"), (
        "        n, c, h, w = x.shape\n",
        "        return self.inner(x)\n        n, c, h, w = x.shape\n"))),

    # ------------------------------------------------------------------ 2. averaging kernel
    ("averaging_kernel", "divides by k*k only (average per channel, summed over channels)",
     _edit("averaging_kernel", ("size = in_channels * kernel_size * kernel_size", "size = kernel_size * kernel_size"))),
    ("averaging_kernel", "divides by the number of channels only",
     _edit("averaging_kernel", ("size = in_channels * kernel_size * kernel_size", "size = in_channels"))),
    ("averaging_kernel", "no output-channel dimension: shape (C, k, k)",
     _edit("averaging_kernel", ("torch.ones(1, in_channels,", "torch.ones(in_channels,"))),
    ("averaging_kernel", "ones, not divided", _edit("averaging_kernel", (" / size", ""))),

    ("averaged_image", "only the first channel is averaged",
     _edit("averaged_image", ("image = image.to(torch.float64)", "image = image[:1].to(torch.float64)"))),
    ("averaged_image", "channel averages summed instead of averaged",
     _edit("averaged_image", ("image[:, i:i + k, j:j + k].mean()", "image[:, i:i + k, j:j + k].mean(dim=(1, 2)).sum()"))),
    ("averaged_image", "zero padding 1 (output as large as the input)",
     _edit("averaged_image", ("    c, h, w = image.shape\n",
                              "    image = torch.nn.functional.pad(image, (1, 1, 1, 1))\n    c, h, w = image.shape\n"))),
    ("averaged_image", "kernel size fixed to 3", _edit("averaged_image", ("    k = kernel_size\n", "    k = 3\n"))),
    ("averaged_image", "output transposed", _edit("averaged_image", ("    return out\n", "    return out.T\n"))),

    # ------------------------------------------------------------------ 3. parameter counting
    ("count_parameters", "biases forgotten",
     _edit("count_parameters", (" + out_channels\n", "\n"), (" + n_outputs\n", "\n"))),
    ("count_parameters", "padding ignored in the output size",
     _edit("count_parameters", ("side = image_size + 2 * padding - kernel_size + 1", "side = image_size - kernel_size + 1"))),
    ("count_parameters", "conv output assumed as large as the input",
     _edit("count_parameters", ("side = image_size + 2 * padding - kernel_size + 1", "side = image_size"))),
    ("count_parameters", "flattened size uses the input channels",
     _edit("count_parameters", ("fc = out_channels * side", "fc = in_channels * side"))),
    ("count_parameters", "conv weights without the input channels",
     _edit("count_parameters", ("out_channels * in_channels * kernel_size", "out_channels * kernel_size"))),

    # ------------------------------------------------------------------ 4. receptive field, VGG size
    ("receptive_field", "stride ignored", _edit("receptive_field", ("        jump *= stride\n", ""))),
    ("receptive_field", "jump updated before the field grows",
     _edit("receptive_field", ("        field += (kernel_size - 1) * jump\n        jump *= stride\n",
                               "        jump *= stride\n        field += (kernel_size - 1) * jump\n"))),
    ("receptive_field", "sum of the kernel sizes",
     _body("receptive_field", receptive_field="return max(1, sum(kernel_size for kernel_size, stride in layers))")),
    ("receptive_field", "layers taken in the wrong order",
     _edit("receptive_field", ("in layers:", "in reversed(layers):"))),
    ("receptive_field", "field multiplied by the stride",
     _edit("receptive_field", ("field += (kernel_size - 1) * jump\n        jump *= stride",
                               "field = (field + kernel_size - 1) * stride"))),

    ("vgg_parameter_counts", "convolution biases forgotten",
     _edit("vgg_parameter_counts", ("conv += item * channels * 3 * 3 + item", "conv += item * channels * 3 * 3"))),
    ("vgg_parameter_counts", "fully connected biases forgotten",
     _edit("vgg_parameter_counts", ("fc += features * size + size", "fc += features * size"))),
    ("vgg_parameter_counts", "poolings ignored in the flattened size",
     _edit("vgg_parameter_counts", ("            side //= 2\n", "            pass\n"))),
    ("vgg_parameter_counts", "input channels fixed to 3",
     _edit("vgg_parameter_counts", ("conv, channels, side = 0, in_channels, image_size", "conv, channels, side = 0, 3, image_size"))),
    ("vgg_parameter_counts", "pooling rounds the size instead of flooring it",
     _edit("vgg_parameter_counts", ("            side //= 2\n", "            side = round(side / 2 + 0.01)\n"))),
    ("vgg_parameter_counts", "classifier sizes of VGG16 hard-coded",
     _edit("vgg_parameter_counts", ("for size in fc_sizes:", "for size in (4096, 4096, 1000):"))),
    ("conv_fc_ratio", "fc / conv (the ratio upside down)",
     _edit("conv_fc_ratio", ('return counts["conv"] / counts["fc"]', 'return counts["fc"] / counts["conv"]'))),
    ("conv_fc_ratio", "conv / total instead of conv / fc",
     _edit("conv_fc_ratio", ('return counts["conv"] / counts["fc"]', 'return counts["conv"] / counts["total"]'))),
    ("conv_fc_ratio", "integer division",
     _edit("conv_fc_ratio", ('return counts["conv"] / counts["fc"]', 'return counts["conv"] // counts["fc"]'))),
    ("conv_fc_ratio", "rounded to four digits, as printed",
     _edit("conv_fc_ratio", ('return counts["conv"] / counts["fc"]', 'return round(counts["conv"] / counts["fc"], 4)'))),

    # ------------------------------------------------------------------ 5. VGG16 on CIFAR-10
    ("channel_stats", "statistics over the batch only: shape (C, H, W)",
     _edit("channel_stats", ("x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))", "x.mean(dim=0), x.std(dim=0)"))),
    ("channel_stats", "normalisation axes confused: (0, 1, 2)",
     _edit("channel_stats", ("x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))", "x.mean(dim=(0, 1, 2)), x.std(dim=(0, 1, 2))"))),
    ("channel_stats", "one standard deviation for all channels",
     _edit("channel_stats", ("x.std(dim=(0, 2, 3))", "x.std().expand(x.shape[1])"))),
    ("channel_stats", "standard deviation per image, then averaged",
     _edit("channel_stats", ("x.std(dim=(0, 2, 3))", "x.std(dim=(2, 3)).mean(dim=0)"))),
    ("channel_stats", "variance instead of standard deviation",
     _edit("channel_stats", ("x.std(dim=(0, 2, 3))", "x.var(dim=(0, 2, 3))"))),

    ("VGG16", "classifier of the ImageNet VGG16 (4096 units)",
     _edit("VGG16", ("[(512, 512), (512, 512)]", "[(512, 4096), (4096, 4096)]"),
           ("nn.Linear(512, num_classes)", "nn.Linear(4096, num_classes)"))),
    ("VGG16", "5x5 kernels", _edit("VGG16", ("kernel_size=3, padding=1", "kernel_size=5, padding=2"))),
    ("VGG16", "one convolution too few (configuration C-like block 5 with two convolutions)",
     _edit("VGG16", ("for item in VGG16_CONFIG:", "for item in VGG16_CONFIG[:-2] + ['M']:"))),
    ("VGG16", "features detached from the graph",
     _edit("VGG16", ("self.features(x)", "self.features(x).detach()"))),
    ("VGG16", "batch_norm flag ignored", _edit("VGG16", ("super().__init__()\n", "super().__init__()\n        batch_norm = False\n"))),
    ("VGG16", "dropout always active (functional dropout with training=True)",
     _edit("VGG16", ("                classifier.append(nn.Dropout(0.5))\n", "                pass\n"),
           ("        self.classifier = nn.Sequential(*classifier)\n",
            "        self.classifier = nn.Sequential(*classifier)\n        self.batch_norm = batch_norm\n"),
           ("        return self.classifier(torch.flatten(self.features(x), start_dim=1))\n",
            "        out = self.classifier(torch.flatten(self.features(x), start_dim=1))\n"
            "        if self.batch_norm:\n"
            "            out = torch.nn.functional.dropout(out, 0.5, training=True)\n"
            "        return out\n"))),
    ("VGG16", "BatchNorm without running statistics (batch statistics in eval mode too)",
     _edit("VGG16", ("nn.BatchNorm2d(item)", "nn.BatchNorm2d(item, track_running_stats=False)"))),
    ("VGG16", "no Dropout in the classifier",
     _edit("VGG16", ("                classifier.append(nn.Dropout(0.5))\n", "                pass\n"))),
    # Right shapes and counts, another function: caught by the comparison on the reference's weights.
    ("VGG16", "ReLU missing after the convolutions",
     _edit("VGG16", ("            layers.append(nn.ReLU(inplace=True))\n", ""))),
    ("VGG16", "average pooling instead of max pooling",
     _edit("VGG16", ("nn.MaxPool2d(kernel_size=2, stride=2)", "nn.AvgPool2d(kernel_size=2, stride=2)"))),
    ("VGG16", "each block pooled before its convolutions (wired in another order)",
     _edit("VGG16", ("for item in VGG16_CONFIG:", 'for item in ["M"] + VGG16_CONFIG[:-1]:'))),
    ("VGG16", "ReLU after the last linear layer",
     _edit("VGG16", ("classifier.append(nn.Linear(512, num_classes))",
                     "classifier += [nn.Linear(512, num_classes), nn.ReLU()]"))),
    ("VGG16", "BatchNorm1d also after the fully connected layers",
     _edit("VGG16", ("                classifier.append(nn.Dropout(0.5))\n",
                     "                classifier += [nn.BatchNorm1d(size_out), nn.Dropout(0.5)]\n"))),

    ("train_one_epoch", "gradients never reset", _edit("train_one_epoch", ("        optimizer.zero_grad()\n", ""))),
    ("train_one_epoch", "model not put into training mode", _edit("train_one_epoch", ("    model.train()\n", ""))),
    ("train_one_epoch", "summed instead of mean loss",
     _edit("train_one_epoch", ("nn.CrossEntropyLoss()", "nn.CrossEntropyLoss(reduction='sum')"))),
    ("train_one_epoch", "returns the mean loss of the epoch, not the list",
     _edit("train_one_epoch", ("    return losses\n", "    return sum(losses) / len(losses)\n"))),
    ("train_one_epoch", "records the loss after the step",
     _edit("train_one_epoch", ("        losses.append(loss.item())\n",
                               "        with torch.no_grad():\n"
                               "            losses.append(loss_function(model(x), y).item())\n"))),

    ("predict", "logits instead of probabilities",
     _edit("predict", ("torch.softmax(model(x.to(device)), dim=1)", "model(x.to(device))"))),
    ("predict", "softmax over the batch", _edit("predict", ("dim=1)", "dim=0)"))),
    ("predict", "model left in training mode", _edit("predict", ("    model.eval()\n", ""))),
    ("predict", "no torch.no_grad: the probabilities keep their autograd graph",
     _edit("predict", ("    with torch.no_grad():\n", "    if True:\n"))),
    ("predict", "model.eval() only after the first batch (its batch-norm statistics move)",
     _edit("predict", ("    model.eval()\n", ""), ("            all_labels.append(y.cpu())\n",
                                                      "            all_labels.append(y.cpu())\n"
                                                      "            model.eval()\n"))),
    ("predict", "predicted classes returned as labels",
     _edit("predict", ("all_labels.append(y.cpu())", "all_labels.append(model(x.to(device)).argmax(dim=1).cpu())"))),

    ("pick_examples", "correct and wrong swapped",
     _edit("pick_examples", ("hits = probs.argmax(dim=1) == labels", "hits = probs.argmax(dim=1) != labels"))),
    ("pick_examples", "argmax over the wrong dimension",
     _edit("pick_examples", ("probs.argmax(dim=1)", "probs.argmax(dim=0)"))),
    ("pick_examples", "always n indices, repeating when there are fewer",
     _edit("pick_examples", ("torch.nonzero(hits).flatten()[:n]", "torch.nonzero(hits).flatten()"),
           ("torch.nonzero(~hits).flatten()[:n]", "torch.nonzero(~hits).flatten()"),
           ("return correct, wrong", "return (correct * n)[:n], (wrong * n)[:n]"))),
    ("pick_examples", "indices returned as a tensor",
     _edit("pick_examples", *((f"[int(i) for i in torch.nonzero({hits}).flatten()[:n]]",
                               f"torch.nonzero({hits}).flatten()[:n]") for hits in ("hits", "~hits")))),

    ("plot_examples", "figure shown, not returned",
     _edit("plot_examples", ("    return fig\n", "    plt.show()\n"))),
    ("plot_examples", "images only, no bar charts",
     _edit("plot_examples", ("        row[1].barh(range(len(classes)), probs[index].tolist())\n", ""))),
    ("plot_examples", "bars of the five most probable classes only",
     _edit("plot_examples", ("row[1].barh(range(len(classes)), probs[index].tolist())",
                             "row[1].barh(range(5), probs[index].topk(5).values.tolist())"))),
    ("plot_examples", "bars show the logits of the probabilities",
     _edit("plot_examples", ("probs[index].tolist())", "probs[index].log().tolist())"))),
]

ALTERNATIVES = [
    ("Conv2d", "einsum over each window, F.pad, a comment naming conv2d and unfold", _body("Conv2d", forward=
        "        # Same numbers as torch.nn.functional.conv2d would give, without conv2d or unfold.\n"
        "        import torch.nn.functional as F\n"
        "        k, s, p = self.kernel_size, self.stride, self.padding\n"
        "        padded = F.pad(x, (p, p, p, p))\n"
        "        h_out = (padded.shape[2] - k) // s + 1\n"
        "        w_out = (padded.shape[3] - k) // s + 1\n"
        "        rows = []\n"
        "        for i in range(h_out):\n"
        "            row = [torch.einsum('nckl,dckl->nd', padded[:, :, i * s:i * s + k, j * s:j * s + k], self.weight)\n"
        "                   for j in range(w_out)]\n"
        "            rows.append(torch.stack(row, dim=-1))\n"
        "        return torch.stack(rows, dim=-2) + self.bias.view(1, -1, 1, 1)\n")),
    ("Conv2d", "loop over output channels and positions, weights from randn, bias zero", '''class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super(Conv2d, self).__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) * 0.1)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x):
        n, c, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        padded = torch.zeros(n, c, h + 2 * p, w + 2 * p, dtype=x.dtype)
        padded[:, :, p:h + p, p:w + p] = x
        out = torch.zeros(n, self.out_channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1, dtype=x.dtype)
        for d in range(self.out_channels):
            for i in range(out.shape[2]):
                for j in range(out.shape[3]):
                    window = padded[:, :, s * i:s * i + k, s * j:s * j + k].reshape(n, -1)
                    out[:, d, i, j] = window @ self.weight[d].reshape(-1).to(x.dtype) + self.bias[d]
        return out
'''),
    ("averaging_kernel", "torch.full", '''def averaging_kernel(in_channels, kernel_size):
    return torch.full((1, in_channels, kernel_size, kernel_size), 1.0 / (in_channels * kernel_size ** 2),
                      dtype=torch.float64)
'''),
    ("averaged_image", "channel mean, then windows averaged by loops", '''def averaged_image(image, kernel_size=3):
    plane = image.double().mean(dim=0)
    k = kernel_size
    return torch.tensor([[plane[i:i + k, j:j + k].mean().item() for j in range(plane.shape[1] - k + 1)]
                         for i in range(plane.shape[0] - k + 1)], dtype=torch.float64)
'''),
    ("averaged_image", "with the student's Conv2d in float32", '''def averaged_image(image, kernel_size=3):
    layer = Conv2d(image.shape[0], 1, kernel_size)
    with torch.no_grad():
        layer.weight.copy_(averaging_kernel(image.shape[0], kernel_size))
        layer.bias.zero_()
        return layer(image.float().unsqueeze(0))[0, 0].double()
'''),
    ("averaged_image", "avg_pool2d over the channel mean", '''def averaged_image(image, kernel_size=3):
    plane = image.to(torch.float64).mean(dim=0, keepdim=True)
    return torch.nn.functional.avg_pool2d(plane, kernel_size, stride=1)[0]
'''),
    ("count_parameters", "builds the network and counts", '''def count_parameters(in_channels, out_channels, kernel_size, padding, image_size, n_outputs):
    side = image_size + 2 * padding - kernel_size + 1
    net = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding), nn.Flatten(),
                        nn.Linear(out_channels * side ** 2, n_outputs))
    return sum(p.numel() for p in net.parameters())
'''),
    ("receptive_field", "backward recursion from the output", '''def receptive_field(layers):
    field = 1
    for kernel_size, stride in reversed(layers):
        field = stride * (field - 1) + kernel_size
    return field
'''),
    ("conv_fc_ratio", "fc as total minus conv, float() of each", '''def conv_fc_ratio(counts):
    conv = float(counts["conv"])
    return conv / (float(counts["total"]) - conv)
'''),
    ("vgg_parameter_counts", "counts torch layers built on the meta device", '''def vgg_parameter_counts(config, in_channels=3, image_size=224, fc_sizes=(4096, 4096, 1000)):
    convs, channels = [], in_channels
    for item in config:
        if item != "M":
            convs.append(nn.Conv2d(channels, item, 3, padding=1, device="meta"))
            channels = item
    features = channels * (image_size // 2 ** config.count("M")) ** 2
    fcs = []
    for size in fc_sizes:
        fcs.append(nn.Linear(features, size, device="meta"))
        features = size
    conv = sum(p.numel() for layer in convs for p in layer.parameters())
    fc = sum(p.numel() for layer in fcs for p in layer.parameters())
    return dict(total=conv + fc, conv=conv, fc=fc)
'''),
    ("channel_stats", "channels first, flattened, population std in float64", '''def channel_stats(x):
    flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    mean = flat.mean(dim=1)
    std = ((flat - mean[:, None]) ** 2).mean(dim=1).sqrt()
    return mean.to(x.dtype), std.to(x.dtype)
'''),
    ("VGG16", "blocks in a ModuleList, BatchNorm after the ReLU, functional dropout", '''class VGG16(nn.Module):
    def __init__(self, num_classes=10, batch_norm=False):
        super().__init__()
        self.batch_norm = batch_norm
        self.blocks = nn.ModuleList()
        channels = 3
        for width, repeats in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]:
            layers = []
            for _ in range(repeats):
                layers += [nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU()]
                if batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                channels = width
            layers.append(nn.MaxPool2d(2))
            self.blocks.append(nn.Sequential(*layers))
        self.fc1 = nn.Linear(512, 512)
        self.fc2 = nn.Linear(512, 512)
        self.fc3 = nn.Linear(512, num_classes)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        x = x.view(x.size(0), -1)
        p = 0.5 if self.batch_norm else 0.0
        x = torch.nn.functional.dropout(torch.relu(self.fc1(x)), p, training=self.training)
        x = torch.nn.functional.dropout(torch.relu(self.fc2(x)), p, training=self.training)
        return self.fc3(x)
'''),
    ("train_one_epoch", "functional loss, set_to_none, enumerate", '''def train_one_epoch(model, loader, optimizer, device):
    model.train()
    history = []
    for step, (images, targets) in enumerate(loader):
        optimizer.zero_grad(set_to_none=True)
        logits = model(images.to(device))
        loss = torch.nn.functional.cross_entropy(logits, targets.to(device))
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    return history
'''),
    ("predict", "logits gathered first, softmax at the end, inference_mode", '''def predict(model, loader, device):
    model.eval()
    logits, labels = [], []
    with torch.inference_mode():
        for x, y in loader:
            logits.append(model(x.to(device)).cpu())
            labels += y.tolist()
    return torch.nn.functional.softmax(torch.cat(logits), dim=-1), torch.tensor(labels)
'''),
    ("pick_examples", "python loop, last examples first", '''def pick_examples(probs, labels, n=3):
    correct, wrong = [], []
    for i in reversed(range(len(labels))):
        hit = int(probs[i].argmax()) == int(labels[i])
        target = correct if hit else wrong
        if len(target) < n:
            target.append(i)
    return correct, wrong
'''),
    ("plot_examples", "vertical bars, figure built with add_subplot", '''def plot_examples(images, probs, labels, indices, classes):
    fig = plt.figure(figsize=(10, 2 * len(indices)))
    for row, index in enumerate(indices):
        ax_image = fig.add_subplot(len(indices), 2, 2 * row + 1)
        ax_image.imshow(images[index].permute(1, 2, 0).numpy())
        ax_image.set_axis_off()
        ax_bars = fig.add_subplot(len(indices), 2, 2 * row + 2)
        ax_bars.bar(list(classes), probs[index].numpy())
        ax_bars.set_title(f"label {classes[int(labels[index])]}, guess {classes[int(probs[index].argmax())]}")
        ax_bars.tick_params(axis="x", labelrotation=90)
    return fig
'''),
]

# Mistakes the public checks alone must catch (tests/mutants/test_public_checks.py).
PUBLIC = [
    ("averaging_kernel", "divides by k*k only (average per channel, summed over channels)"),
    ("averaging_kernel", "divides by the number of channels only"),
    ("averaging_kernel", "ones, not divided"),
    ("conv_fc_ratio", "fc / conv (the ratio upside down)"),
    ("conv_fc_ratio", "conv / total instead of conv / fc"),
    ("conv_fc_ratio", "integer division"),
    # named by the public check only when the losses are those of a loop with that mistake
    ("train_one_epoch", "gradients never reset"),
    ("train_one_epoch", "summed instead of mean loss"),
]
