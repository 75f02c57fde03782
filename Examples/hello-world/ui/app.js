// The host posts its context to the iframe; show what arrived.
window.addEventListener("message", (event) => {
  const target = document.getElementById("context");
  if (event.data && typeof event.data === "object") {
    target.textContent = "Host context: " + JSON.stringify(event.data);
  }
});
window.parent.postMessage({ type: "extension.ready" }, "*");
