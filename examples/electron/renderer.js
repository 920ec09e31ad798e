// Shows the counts the main process sends (see preload.ts for window.netpoll).
window.netpoll.onCounts((counts) => {
  document.getElementById('address').textContent = counts.address;
  document.getElementById('open').textContent = String(counts.open);
  document.getElementById('total').textContent = String(counts.total);
  document.getElementById('bytes').textContent = String(counts.bytes);
});
