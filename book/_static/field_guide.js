// The list button at the top right of the article (sphinx-book-theme's, which stays in view while the
// page scrolls) opens the page's table of contents through the page header's button: the only one
// pydata-sphinx-theme wires to the contents drawer. Loaded by book/_ext/book_html.py.
document.addEventListener("DOMContentLoaded", () => {
  const button = document.querySelector(".bd-header-article button.secondary-toggle");
  const wired = document.querySelector(".bd-header button.secondary-toggle");
  if (button && wired && button !== wired) {
    button.addEventListener("click", (event) => {
      event.preventDefault();
      wired.click();
    });
  }
});
