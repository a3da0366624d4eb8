// On a phone a menu is one line that scrolls sideways: the current tab is brought into view (centred when it
// can be), rather than left off-screen to the right. The page itself does not move.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("nav ul").forEach(function (list) {
    var current = list.querySelector('[aria-current="page"]');
    if (current && list.scrollWidth > list.clientWidth) {
      var offset = current.getBoundingClientRect().left - list.getBoundingClientRect().left;
      list.scrollLeft += offset - (list.clientWidth - current.offsetWidth) / 2;
    }
  });
});
