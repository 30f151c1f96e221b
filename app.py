"""MNIST Lab's entry point and home page: what each page teaches, and which datasets this machine has.

Start the app with `streamlit run app.py`. This file declares the navigation and draws
the home page; the home page imports no TensorFlow, so it opens fast, and the Train,
Draw and Convolutions pages (in pages/) load it when they need it.
"""

import streamlit as st

from mnistlab.datasets import DATASETS
from streamlit_helpers import dataset_or_error, example_grid

st.set_page_config(page_title="MNIST Lab", page_icon=":material/school:", layout="wide")


PAGES = (
    (
        "pages/1_Train.py",
        "Train",
        ":material/model_training:",
        "Pick a dataset and an architecture, watch loss and accuracy move live, and stop as soon as a target "
        "accuracy is reached. Then read the confusion matrix and look at the mistakes.",
    ),
    (
        "pages/2_Draw.py",
        "Draw",
        ":material/draw:",
        "Draw a digit and see the prediction, and every step that turns your drawing into the 28x28 input "
        "the network expects.",
    ),
    (
        "pages/3_Convolutions.py",
        "Convolutions",
        ":material/grid_on:",
        "Pass a 3x3 kernel over an image, see what max pooling keeps, and look at the filters and feature "
        "maps a CNN has learned.",
    ),
)



def home() -> None:
    st.title("MNIST Lab")
    st.write("Your first lessons of computer vision with TensorFlow and Keras: train a network, draw for it, see inside it.")

    st.header("What you will learn")
    columns = st.columns(len(PAGES))
    for column, (path, label, icon, lesson) in zip(columns, PAGES):
        with column:
            st.page_link(path, label=label, icon=icon)
            st.caption(lesson)

    st.header("Datasets on this machine")
    for name, info in DATASETS.items():
        dataset, error = dataset_or_error(name)
        st.subheader(info.title)
        st.caption(info.description)
        if dataset is None:
            st.warning(error)
            continue
        kind = "a sample" if dataset.source.is_sample else "the full set"
        st.write(
            f"**{len(dataset.y_train):,}** training and **{len(dataset.y_test):,}** test images ({kind}), "
            f"from {dataset.source.describe()}."
        )
        if dataset.source.notice:
            st.info(dataset.source.notice)
        left, right = st.columns([1, 3])
        with left:
            st.markdown("\n".join(f"{row + 1}. {class_name}" for row, class_name in enumerate(info.class_names)))
        with right:
            st.image(example_grid(name), caption="One row per class, in the order of the list.", width=360)


navigation = st.navigation(
    [st.Page(home, title="Home", icon=":material/home:", default=True)]
    + [st.Page(path, title=label, icon=icon, url_path=label.lower()) for path, label, icon, _ in PAGES]
)
navigation.run()
