"""The glossary: every term a student meets in MNIST Lab, explained once, in plain words.

One source of truth: the Glossary page lists these entries, and the pages' help texts
and captions for these terms come from here (`explain`), never from copies. Each entry
says what the term is and what to look for, and where in the app it is at work (the
page's URL slug and the control or figure's label), so the Glossary page can link
there and a test can check that every place shows the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistlab.i18n import N_, _


@dataclass(frozen=True)
class Place:
    """Where a term is at work: a page (its URL slug) and the label of a control or figure on it."""

    page: str
    label: str


@dataclass(frozen=True)
class Entry:
    key: str
    term: str
    explanation: str
    places: tuple[Place, ...]


GLOSSARY: tuple[Entry, ...] = (
    Entry(
        "flatten",
        N_("Flatten"),
        N_(
            "Flatten lays the 28x28 grid of pixels out in one long row of 784 numbers, so that a dense layer can take it. "
            "Nothing is learned here; only the shape changes."
        ),
        (Place("train", N_("Layers, output shapes and parameters")),),
    ),
    Entry(
        "dense",
        N_("Dense layer"),
        N_(
            "In a dense layer every neuron is connected to every number of the layer before it, each connection with its own "
            "weight. Look at the layer table: dense layers hold most of a network's parameters."
        ),
        (Place("train", N_("Layers, output shapes and parameters")),),
    ),
    Entry(
        "relu",
        N_("ReLU"),
        N_(
            "ReLU is the activation function max(0, x): it keeps positive values and turns negative ones into 0. Without a "
            "non-linear step like this, stacked layers could only learn what one layer can."
        ),
        (Place("convolutions", N_("ReLU after the convolution (negative values become 0)")),),
    ),
    Entry(
        "softmax",
        N_("Softmax"),
        N_(
            "Softmax turns the last layer's ten scores into ten probabilities that add up to 100%. The prediction is the class "
            "with the highest one; look at how sure the network is, not only at its answer."
        ),
        (Place("draw", N_("Prediction")),),
    ),
    Entry(
        "epoch",
        N_("Epoch"),
        N_(
            "One epoch is one pass over all the training images. After each epoch the curves get a new point: watch whether "
            "the next epoch still improves validation accuracy."
        ),
        (Place("train", N_("Max epochs")),),
    ),
    Entry(
        "batch",
        N_("Batch"),
        N_(
            "A batch is the small group of images the network looks at before it updates its weights once. Smaller batches "
            "mean more, noisier updates per epoch; larger ones fewer, smoother updates."
        ),
        (Place("train", N_("Batch size")),),
    ),
    Entry(
        "loss",
        N_("Loss"),
        N_(
            "The loss measures how wrong the network's probabilities are (here: cross-entropy); training changes the weights "
            "to make it smaller. It should fall quickly at first, then more slowly."
        ),
        (Place("train", N_("Loss curves")),),
    ),
    Entry(
        "accuracy",
        N_("Accuracy"),
        N_("Accuracy is the share of images whose class the network gets right: 0.99 means 99 of every 100. It is what the target stops at."),
        (Place("train", N_("Target accuracy")), Place("train", N_("Accuracy curves"))),
    ),
    Entry(
        "validation",
        N_("Validation"),
        N_(
            "Validation images are kept aside from the training images and never trained on; the network is measured on them "
            "after each epoch. They tell you how it does on images it has not seen, while it trains."
        ),
        (Place("train", N_("Validation split")),),
    ),
    Entry(
        "test",
        N_("Test set"),
        N_(
            "The test set is a separate set of images used only once, after training, for the final score. Because nothing "
            "was tuned on it, its accuracy is the fairest estimate of how the network does on new images."
        ),
        (Place("train", N_("Test accuracy")),),
    ),
    Entry(
        "overfitting",
        N_("Overfitting"),
        N_(
            "Overfitting is learning the training images by heart instead of what the classes have in common. You see it in "
            "the curves: training accuracy keeps rising while validation accuracy stops rising or falls."
        ),
        (Place("train", N_("Accuracy curves")),),
    ),
    Entry(
        "callback",
        N_("Callback"),
        N_(
            "A callback is code that Keras runs during training, for example after every epoch. Here a callback checks the "
            "accuracy and stops training as soon as the target is reached."
        ),
        (Place("train", N_("Stop at a target accuracy")),),
    ),
    Entry(
        "convolution",
        N_("Convolution"),
        N_(
            "A convolution slides a small grid of weights (the kernel) over the image and, at each position, multiplies and "
            "adds: the result is large where the image looks like the kernel. A 3x3 kernel turns 28x28 into 26x26."
        ),
        (Place("convolutions", N_("Kernel playground")),),
    ),
    Entry(
        "kernel",
        N_("Kernel"),
        N_(
            "A kernel is the small grid of numbers a convolution slides over the image, such as 3x3. Try the edge kernel: "
            "it answers strongly where brightness changes and not at all on flat areas."
        ),
        (Place("convolutions", N_("Kernel")),),
    ),
    Entry(
        "filter",
        N_("Filter"),
        N_(
            "A filter is one kernel that a convolution layer has learned; a layer with 32 filters looks for 32 different "
            "patterns. Early filters often look like edge and line detectors."
        ),
        (Place("convolutions", N_("Learned filters")), Place("convolutions", N_("Filter"))),
    ),
    Entry(
        "feature_map",
        N_("Feature map"),
        N_(
            "A feature map is what one filter makes of the image: bright where the filter's pattern is found. Compare maps: "
            "each filter lights up different parts of the digit."
        ),
        (Place("convolutions", N_("Feature maps")),),
    ),
    Entry(
        "max_pooling",
        N_("Max pooling"),
        N_(
            "Max pooling keeps only the largest value of each 2x2 square, so a 26x26 map becomes 13x13. The network keeps "
            "what was found and roughly where, with a quarter of the numbers."
        ),
        (Place("convolutions", N_("Max pooling")),),
    ),
    Entry(
        "normalisation",
        N_("Normalisation"),
        N_(
            "Pixels go from 0 to 255; dividing by 255 brings them to 0 to 1, where training works much better. The drawing "
            "on the Draw page is divided by 255 the same way before the network sees it."
        ),
        (Place("train", N_("Normalisation")),),
    ),
    Entry(
        "learning_rate",
        N_("Learning rate"),
        N_(
            "After each batch, every weight moves a little against its share of the loss; the learning rate is how big that "
            "step is. Too big and the loss jumps around, too small and it crawls. A one-cycle schedule starts small, rises to "
            "the chosen rate and falls to almost nothing by the end, so the network learns fast and then settles."
        ),
        (Place("train", N_("Learning rate")),),
    ),
    Entry(
        "dropout",
        N_("Dropout"),
        N_(
            "During training, dropout switches off a random part of a layer's units at every batch, so the network cannot "
            "lean on any single one and must learn the same thing several ways. When it predicts, every unit is on."
        ),
        (Place("train", N_("Dropout")),),
    ),
    Entry(
        "batch_normalisation",
        N_("Batch normalisation"),
        N_(
            "Batch normalisation re-centres and re-scales what a layer passes on, using the mean and spread of each batch; "
            "the next layer then always gets numbers of a similar size, and training is faster and steadier."
        ),
        (Place("train", N_("Batch normalisation")),),
    ),
    Entry(
        "augmentation",
        N_("Augmentation"),
        N_(
            "Augmentation shows the network slightly changed copies of the training images (turned, shifted, zoomed, or "
            "mirrored when that keeps the class), a new copy at every epoch, so it learns shapes rather than exact pixels."
        ),
        (Place("train", N_("Augment: rotate, shift and zoom a little")),),
    ),
    Entry(
        "seed",
        N_("Seed"),
        N_(
            "The seed is the starting number of every random choice of a training: the first weights and the order of the "
            "images. The same settings and the same seed give the same network again; another seed gives a slightly "
            "different one."
        ),
        (Place("train", N_("Seed")),),
    ),
    Entry(
        "saliency",
        N_("Saliency map"),
        N_(
            "A saliency map colours the pixels of an image by how much they pushed the network towards an answer: warm where "
            "the ink made it say 7, cool where it spoke against 7. It shows what the network looked at, not what it knows."
        ),
        (Place("explain", N_("Why this answer")),),
    ),
    Entry(
        "adversarial",
        N_("Adversarial example"),
        N_(
            "An adversarial example is an image changed on purpose, often by amounts too small to notice, so that a network "
            "answers something else. It shows that a network that reads digits well can still be fooled in ways a person "
            "would not be."
        ),
        (Place("explain", N_("Fool it")),),
    ),
    Entry(
        "embedding",
        N_("Embedding"),
        N_(
            "The numbers a network's last hidden layer gives an image are its embedding: a point in a space where the "
            "network keeps images it finds alike close together. Drawn in 2-D, each class forms a cloud; mistakes sit "
            "between clouds."
        ),
        (Place("explain", N_("Where it sits among test images")),),
    ),
)

BY_KEY: dict[str, Entry] = {entry.key: entry for entry in GLOSSARY}


def explain(key: str) -> str:
    """The explanation of a glossary term, in the current language (for help texts and captions)."""
    if key not in BY_KEY:
        raise ValueError(f"There is no glossary entry {key!r}; the entries are {', '.join(BY_KEY)}.")
    return _(BY_KEY[key].explanation)


def term(key: str) -> str:
    return _(BY_KEY[key].term)
