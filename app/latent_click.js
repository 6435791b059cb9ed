() => {
  // Clicking a biased latent (a ring) on the latent map inspects it: the ring's row number (its
  // customdata) goes into the "biased latent #" box, then its button is pressed, so a click does what
  // typing the number and pressing the button does. Plotly redraws the map into new elements when the
  // figure changes, so every map element is looked for and hooked once.
  const hook = () => {
    document.querySelectorAll("#latent-map .js-plotly-plot, #latent-umap .js-plotly-plot").forEach((plot) => {
      if (plot.dataset.pickHooked || typeof plot.on !== "function") return;
      plot.dataset.pickHooked = "1";
      plot.on("plotly_click", (event) => {
        const point = (event.points || []).find((p) => Number.isInteger(p.customdata));
        const box = document.querySelector("#latent-pick input");
        const go = document.querySelector("#latent-pick-go");
        if (!point || !box || !go) return;
        const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
        setValue.call(box, String(point.customdata));
        box.dispatchEvent(new Event("input", { bubbles: true }));
        setTimeout(() => go.click(), 100);
      });
    });
  };
  setInterval(hook, 500);
}
