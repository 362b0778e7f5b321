// The two list buttons of the article's header (sphinx-book-theme's, which stay in view while the page
// scrolls): ☰ at the top left opens the chapter list, the one at the top right the page's table of
// contents. pydata-sphinx-theme and sphinx-book-theme wire only the first `.primary-toggle` and
// `.secondary-toggle` of the document, the page header's, which this book never shows; a click on a
// visible button is passed on to it. Checked by tests/book/test_browser.py at 1280 px and 390 px.
// Loaded by book/_ext/book_html.py.
document.addEventListener("DOMContentLoaded", () => {
  for (const kind of ["primary-toggle", "secondary-toggle"]) {
    const wired = document.querySelector(`.${kind}`); // the one the themes listen to
    for (const button of document.querySelectorAll(`.bd-header-article button.${kind}`)) {
      if (!wired || button === wired) continue;
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        wired.click();
      });
    }
  }
  // A drawer (the chapter list on a phone, "On this page" at every width) is a modal <dialog> that
  // greys the page: close it once a link is picked, so the reader sees the section they asked for.
  for (const id of ["pst-primary-sidebar-modal", "pst-secondary-sidebar-modal"]) {
    const dialog = document.getElementById(id);
    if (!dialog) continue;
    dialog.addEventListener("click", (event) => {
      const link = event.target.closest("a[href]");
      if (link && dialog.open) dialog.close();
    });
  }
});
