// Code boxes (textarea.code): Tab indents, Shift+Tab dedents, Enter keeps the indentation.
// Escape lets the next Tab leave the box, so keyboard users are never trapped in it.
(function () {
  "use strict";
  var INDENT = "    ";

  function lineStart(text, pos) {
    return text.lastIndexOf("\n", pos - 1) + 1;
  }

  function replace(box, start, end, text, selStart, selEnd) {
    box.setRangeText(text, start, end, "end");
    box.setSelectionRange(selStart, selEnd);
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function indent(box, outdent) {
    var text = box.value, s = box.selectionStart, e = box.selectionEnd;
    if (!outdent && s === e) {
      replace(box, s, e, INDENT, s + INDENT.length, s + INDENT.length);
      return;
    }
    var from = lineStart(text, s);
    var to = e > s && text.charAt(e - 1) === "\n" ? e - 1 : e;
    var lines = text.slice(from, to).split("\n");
    var firstShift = 0, total = 0;
    var changed = lines.map(function (line, i) {
      if (!outdent) {
        total += INDENT.length;
        if (i === 0) firstShift = INDENT.length;
        return INDENT + line;
      }
      var n = line.match(/^ {0,4}/)[0].length;
      if (n === 0 && line.charAt(0) === "\t") n = 1;
      total -= n;
      if (i === 0) firstShift = -n;
      return line.slice(n);
    });
    replace(box, from, to, changed.join("\n"), Math.max(from, s + firstShift), e + total);
  }

  function newline(box) {
    var text = box.value, s = box.selectionStart;
    var line = text.slice(lineStart(text, s), s);
    var lead = line.match(/^[ \t]*/)[0];
    if (/:\s*$/.test(line)) lead += INDENT;
    var insert = "\n" + lead;
    replace(box, s, box.selectionEnd, insert, s + insert.length, s + insert.length);
  }

  document.querySelectorAll("textarea.code").forEach(function (box) {
    var escaped = false;
    box.addEventListener("focus", function () { escaped = false; });
    box.addEventListener("keydown", function (event) {
      if (event.isComposing || event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key === "Escape") { escaped = true; return; }
      if (event.key === "Tab" && !escaped) {
        event.preventDefault();
        indent(box, event.shiftKey);
      } else if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        newline(box);
      }
    });
  });
})();
