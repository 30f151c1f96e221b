"""Glossary page: every term of the lessons, explained, with links to where it is at work."""

from __future__ import annotations

import streamlit as st

from mnistlab.glossary import GLOSSARY
from mnistlab.i18n import _, current_language
from mnistlab_ui.shell import leave_pages_folder_mode, page_link, page_titles

leave_pages_folder_mode()
st.title(_("Glossary"))
st.write(_("The words of the lessons in plain words. Each one links to the page where you see it at work."))

PAGE_TITLES = page_titles()
language = current_language()
query = {"lang": language} if language != "en" else None
for entry in sorted(GLOSSARY, key=lambda entry: _(entry.term).casefold()):
    st.subheader(_(entry.term), anchor=entry.key)
    st.write(_(entry.explanation))
    st.caption(_("See it at work:"))
    for place in entry.places:
        page_link(place.page, f"{PAGE_TITLES[place.page]} → {_(place.label)}", None, {**(query or {}), "see": entry.key})
