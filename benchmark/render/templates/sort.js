// Click a sortable header to sort every <tbody> of its table by that column (measured rows and
// reference rows each among themselves); click again to reverse. Cells compare by data-value when
// present, else by text; an empty value sorts last either way.
(function () {
  function value(row, column) {
    var cell = row.cells[column];
    if (!cell) return '';
    return cell.hasAttribute('data-value') ? cell.getAttribute('data-value') : cell.textContent.trim();
  }
  function sortTable(table, th) {
    var column = th.cellIndex, numeric = th.getAttribute('data-type') === 'number';
    var current = th.getAttribute('aria-sort');
    var ascending = current ? current !== 'ascending' : th.getAttribute('data-first') !== 'descending';
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (r1, r2) {
        var a = value(r1, column), b = value(r2, column);
        if (a === '' || b === '') return (a === '') - (b === '');
        var d = numeric ? parseFloat(a) - parseFloat(b) : a.localeCompare(b, undefined, {numeric: true});
        return ascending ? d : -d;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable th[data-type]'), function (th) {
    th.tabIndex = 0;
    th.title = 'sort by this column (click again to reverse)';
    th.addEventListener('click', function () { sortTable(th.closest('table'), th); });
    th.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); sortTable(th.closest('table'), th); }
    });
  });
})();
