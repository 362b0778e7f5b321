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
      if (!link || !dialog.open) return;
      const url = new URL(link.href, location.href);
      const target = url.hash && document.getElementById(decodeURIComponent(url.hash.slice(1)));
      if (url.pathname !== location.pathname || !target) {
        dialog.close(); // another page: it loads as usual
        return;
      }
      // A section of this page: close first (the theme then moves the list back into the page and
      // gives the focus back to the button, which moved the scroll), then go to the section.
      event.preventDefault();
      dialog.close();
      history.pushState(null, "", url.hash);
      target.scrollIntoView();
    });
  }
});

// On a phone (issue 28): every figure links to its full-size image, so that the reader can open it
// and zoom; a table, equation or listing wider than the screen says that it scrolls sideways; and a
// wrapped line of code keeps its indentation (book/_static/field_guide.css, item 6).
const FG_WIDE =
  ".pst-scrollable-table-container, mjx-container[display='true'], main pre, a.fg-full-size";
// the few words this script writes, in the page's language (the Chinese edition: <html lang="zh-CN">)
const FG_ZH = document.documentElement.lang.startsWith("zh");
const FG_WORDS = FG_ZH
  ? { fullSize: "打开原尺寸图片", scroll: "左右滑动查看 ⇢" }
  : { fullSize: "Open the full-size image", scroll: "scroll sideways ⇢" };

function fgLinkFigures() {
  for (const img of document.querySelectorAll("main img")) {
    // book/_ext/book_html.py, item 5: the narrowest width at which the figure's text is 9 CSS px
    const legible = [...img.classList].find((c) => c.startsWith("fg-legible-"));
    if (legible) img.style.minWidth = `${legible.slice("fg-legible-".length)}px`;
    if (img.closest("a") || !img.getAttribute("src")) continue;
    const link = document.createElement("a");
    link.href = img.getAttribute("src");
    link.className = "fg-full-size";
    link.title = FG_WORDS.fullSize;
    img.replaceWith(link);
    link.append(img);
  }
}

// Each line of a listing in a block of its own, so that CSS can hang its continuation lines under
// its indentation (+4 columns) when it wraps. The newline stays in the text, hidden, so that copying
// the listing (sphinx-copybutton reads the text) gives the code unchanged.
function fgSplitLines(pre) {
  if (pre.dataset.fgLines) return;
  pre.dataset.fgLines = "1";
  const lines = [[]];
  for (const node of [...pre.childNodes]) {
    const text = node.textContent;
    if (!text.includes("\n")) {
      lines.at(-1).push(node);
      continue;
    }
    text.split("\n").forEach((part, i) => {
      if (i > 0) lines.push([]);
      if (!part) return;
      if (node.nodeType === Node.TEXT_NODE) {
        lines.at(-1).push(document.createTextNode(part));
      } else {
        const copy = node.cloneNode(false);
        copy.textContent = part;
        lines.at(-1).push(copy);
      }
    });
  }
  pre.textContent = "";
  lines.forEach((nodes, i) => {
    const line = document.createElement("span");
    line.className = "fg-line";
    line.append(...nodes);
    const indent = line.textContent.match(/^ */)[0].length;
    line.style.setProperty("--fg-indent", `${indent}ch`);
    if (i < lines.length - 1 || nodes.length) pre.append(line);
    if (i < lines.length - 1) {
      const newline = document.createElement("span");
      newline.className = "fg-nl";
      newline.textContent = "\n";
      pre.append(newline);
    }
  });
}

// The cue goes on its own line above the box (above an equation's block, not beside the equation).
function fgCueAnchor(box) {
  return (box.matches("mjx-container") && box.closest("div.math")) || box;
}

function fgMarkScrollers() {
  for (const box of document.querySelectorAll(FG_WIDE)) {
    const scrolls = box.scrollWidth > box.clientWidth + 1;
    box.classList.toggle("fg-scrolls", scrolls);
    const block = fgCueAnchor(box);
    let cue = block.previousElementSibling;
    if (!(cue && cue.classList.contains("fg-scroll-cue"))) {
      if (!scrolls) continue;
      cue = document.createElement("div");
      cue.className = "fg-scroll-cue";
      cue.setAttribute("aria-hidden", "true");
      cue.textContent = FG_WORDS.scroll;
      block.before(cue);
    }
    cue.hidden = !scrolls;
  }
}

// The same page in the other language (book/_ext/book_html.py writes the <link rel="alternate">):
// a 中文 / English link first among the article header's buttons, on every page and width.
function fgLanguageLink() {
  const alt = document.querySelector('link[rel="alternate"][hreflang]');
  const buttons = document.querySelector(".article-header-buttons");
  if (!alt || !buttons || document.querySelector("a.fg-language")) return;
  const link = document.createElement("a");
  link.className = "btn btn-sm fg-language";
  link.href = alt.getAttribute("href");
  link.hreflang = alt.hreflang;
  link.lang = alt.hreflang;
  link.textContent = alt.hreflang.startsWith("zh") ? "中文" : "English";
  link.title = alt.hreflang.startsWith("zh") ? "本页的中文版" : "This page in English";
  buttons.prepend(link);
}

document.addEventListener("DOMContentLoaded", () => {
  fgLanguageLink();
  fgLinkFigures();
  for (const pre of document.querySelectorAll("main div.highlight pre")) fgSplitLines(pre);
  fgMarkScrollers();
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(fgMarkScrollers);
  }
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(fgMarkScrollers, 150);
  });
});
