// The demo shop's behaviour: everything lift-related goes through lift.js.
import { init } from "/static/lift.js";

const products = [
  { sku: "lamp-arc", name: "Arc floor lamp", price: 189, hue: 32, shape: "lamp" },
  { sku: "mug-ash", name: "Ash stoneware mug", price: 24, hue: 200, shape: "mug" },
  { sku: "chair-oak", name: "Oak lounge chair", price: 420, hue: 24, shape: "chair" },
  { sku: "plant-fig", name: "Fiddle fig, potted", price: 58, hue: 120, shape: "plant" },
  { sku: "lamp-dot", name: "Dot table lamp", price: 96, hue: 48, shape: "lamp" },
  { sku: "mug-sand", name: "Sand espresso cups", price: 36, hue: 28, shape: "mug" },
  { sku: "chair-rush", name: "Rush stool", price: 145, hue: 40, shape: "chair" },
  { sku: "plant-olive", name: "Olive tree, small", price: 72, hue: 90, shape: "plant" },
];

// The whole catalog: the eight above and ten more of each kind (the simulated
// shoppers browse all 48; recommendations may show any of them).
const kinds = { lamp: ["Lamp", 36, 80], mug: ["Mug", 200, 18], chair: ["Chair", 24, 160], plant: ["Plant", 110, 40] };
const catalog = new Map(products.map((p) => [p.sku, p]));
for (const [shape, [label, hue, price]] of Object.entries(kinds)) {
  for (let k = 3; k <= 12; k++) {
    const sku = `${shape}-${String(k).padStart(2, "0")}`;
    catalog.set(sku, { sku, name: `${label} no. ${k}`, price: price + 7 * k, hue: hue + 9 * k, shape });
  }
}

// The recommendation block each bandit arm shows: fixed picks, except "similar",
// which asks lift's recommender (docs/recommendations.md) and falls back to its picks
// until the recommender has a model.
const blocks = {
  trending: { title: "Trending this week", pick: [4, 0, 3, 6] },
  similar: { title: "Similar to what you viewed", pick: [1, 5, 2, 7], recommender: "similar" },
  bestsellers: { title: "Our bestsellers", pick: [0, 2, 1, 3] },
};

const shapes = {
  lamp: '<path d="M30 18h20l8 22H22z" /><rect x="38" y="40" width="4" height="26"/><rect x="28" y="66" width="24" height="4" rx="2"/>',
  mug: '<rect x="22" y="28" width="30" height="34" rx="6"/><path d="M52 36h6a6 6 0 0 1 0 14h-6" fill="none" stroke-width="5"/>',
  chair: '<rect x="24" y="20" width="8" height="44" rx="3"/><rect x="24" y="42" width="34" height="8" rx="3"/><rect x="50" y="46" width="8" height="18" rx="3"/>',
  plant: '<path d="M40 52C24 46 22 28 30 18c6 10 12 18 10 34zM40 52c16-6 18-24 10-34-6 10-12 18-10 34z"/><path d="M28 52h24l-4 18H32z"/>',
};

function art(p) {
  return `<svg viewBox="0 0 80 80" aria-hidden="true"><g fill="currentColor" stroke="currentColor">${shapes[p.shape]}</g></svg>`;
}

const body = document.body;
const visits = Number(localStorage.getItem("demo:visits") || 0) + 1;
localStorage.setItem("demo:visits", String(visits));
const device = matchMedia("(max-width: 700px)").matches ? "mobile" : "desktop";

const lift = init({
  endpoint: location.origin,
  clientKey: body.dataset.clientKey,
  attributes: { device, returning: visits > 1, visits, country: "US" },
  consent: { analytics: true, personalization: true },
  refreshInterval: 1500, // so the High Intent discount shows up while you browse
  flushInterval: 1000,
});
window.lift = lift;

const cart = [];

function card(p, opts = {}) {
  const el = document.createElement("article");
  el.className = "product";
  el.innerHTML = `<button class="art" style="--h:${p.hue}" aria-label="View ${p.name}">${art(p)}</button>
    <h3>${p.name}</h3><p class="price">$${p.price}</p>
    <button class="add" data-testid="add-${p.sku}">Add to cart</button>`;
  el.querySelector(".art").onclick = () => {
    if (opts.reco) lift.track("click", { properties: { block: "recommendations", arm: opts.reco, sku: p.sku } });
    const view = { sku: p.sku, price: p.price };
    if (opts.recommendation) view.recommendation_id = opts.recommendation;
    lift.track("product_view", { properties: view });
    lift.flush(); // behavioural segments and recommendations react to views within a second
    el.classList.add("seen");
    // The recommendations follow the view: ask again once lift has it.
    if (document.getElementById("reco").dataset.arm === "similar") setTimeout(() => renderReco(lift.decisions || {}), 800);
  };
  el.querySelector(".add").onclick = () => {
    cart.push(p);
    lift.track("add_to_cart", { properties: { sku: p.sku, price: p.price } });
    renderCart();
  };
  return el;
}

function renderGrid() {
  const grid = document.getElementById("grid");
  grid.replaceChildren(...products.map((p) => card(p)));
}

async function renderReco(decisions) {
  const arm = decisions.recommendations?.variant;
  const block = blocks[arm] || blocks.bestsellers;
  // The section's heading is the flag recommendations-title; the bandit picks the block.
  document.getElementById("reco-heading").textContent = lift.value("recommendations-title", "You may also like");
  document.getElementById("reco-title").textContent = block.title;
  document.getElementById("reco").dataset.arm = arm || "";
  let cards = block.pick.map((i) => card(products[i], { reco: arm }));
  let recs = null;
  if (block.recommender) {
    recs = await lift.recommend(block.recommender, { n: 4 }).catch(() => null);
    const items = (recs?.items || []).map((it) => catalog.get(it.item)).filter(Boolean);
    if (items.length) cards = items.map((p) => card(p, { reco: arm, recommendation: recs.recommendation_id }));
    else recs = null;
  }
  document.getElementById("reco-grid").replaceChildren(...cards);
  document.getElementById("reco").dataset.source = recs ? recs.strategy + " " + recs.model_version : "fixed";
  recs?.shown(); // the impression, for attribution
  if (arm) lift.expose("recommendations"); // the block is on the page now
}

function discount() {
  const v = lift.value("discount-offer", null);
  return v && v.percent ? v : null;
}

function renderCart() {
  document.getElementById("cart-count").textContent = cart.length;
  document.getElementById("checkout").hidden = cart.length === 0;
  document.getElementById("cart-lines").replaceChildren(
    ...cart.map((p) => Object.assign(document.createElement("li"), { textContent: `${p.name} — $${p.price}` })),
  );
  document.getElementById("cart-total").textContent = "$" + total().toFixed(2);
}

function total() {
  const d = discount();
  const sum = cart.reduce((s, p) => s + p.price, 0);
  return d ? sum * (1 - d.percent / 100) : sum;
}

function renderDecisions(decisions) {
  document.querySelector('[data-testid="free-shipping"]').hidden = lift.value("free-shipping", false) !== true;
  const d = discount();
  document.getElementById("offer").hidden = !d;
  if (d) document.getElementById("offer-text").textContent = `Here is ${d.percent}% off your order with code ${d.code}.`;
  if (document.getElementById("reco").dataset.arm !== decisions.recommendations?.variant) renderReco(decisions);
  document.getElementById("reco-heading").textContent = lift.value("recommendations-title", "You may also like");
  document.getElementById("who").textContent = lift.id;
  const rows = Object.keys(decisions).sort().map((key) => {
    const tr = document.createElement("tr");
    const x = decisions[key];
    tr.innerHTML = `<td>${key}</td><td>${x.variant}</td><td>${x.reason}</td>`;
    if (x.experiment) tr.className = "exp";
    return tr;
  });
  document.getElementById("decisions").replaceChildren(...rows);
  renderCart();
}

document.getElementById("buy").onclick = () => {
  lift.track("purchase", { value: Math.round(total() * 100) / 100, properties: { items: cart.length } });
  cart.length = 0;
  renderCart();
  lift.flush();
};
document.getElementById("sign-in").onclick = () => lift.identify("customer-42");
document.getElementById("new-visitor").onclick = () => {
  localStorage.setItem("demo:visits", "0");
  lift.reset();
};
for (const id of ["consent-analytics", "consent-personalization"]) {
  document.getElementById(id).onchange = () =>
    lift.setConsent({
      analytics: document.getElementById("consent-analytics").checked,
      personalization: document.getElementById("consent-personalization").checked,
    });
}
setInterval(() => (document.getElementById("sent").textContent = String(sentCount())), 500);

// Events sent so far: those no longer waiting in lift.js's queue.
let tracked = 0;
const track = lift.track.bind(lift);
lift.track = (...a) => (tracked++, track(...a));
function sentCount() {
  const queued = JSON.parse(localStorage.getItem("lift:queue") || "[]").length;
  return Math.max(0, tracked - queued);
}

renderGrid();
lift.on("change", renderDecisions);
lift.track("page_view", { properties: { path: "/demo" } });
lift.decide().then(renderDecisions);
