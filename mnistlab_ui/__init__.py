"""MNIST Lab's Streamlit side: what the pages share (session state, the server's services, model choice, run views).

It imports Streamlit and `mnistlab`; `mnistlab` never imports it.
"""
