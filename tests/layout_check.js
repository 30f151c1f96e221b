// Everything a class would see as broken at this width: clipped, hidden, broken or overlapping.
() => {
  const problems = [];
  const width = window.innerWidth;
  // A collapsed sidebar is off screen on purpose (its toggle brings it in); what is in it is not on the page.
  const collapsed = document.querySelector('[data-testid="stSidebar"][data-collapsed="true"]');
  const visible = (element) => {
    if (collapsed && collapsed.contains(element)) return false;
    const r = element.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  for (const element of document.querySelectorAll('[data-testid="stImage"] img, [data-testid="stVegaLiteChart"], [data-testid="stTable"], [data-testid="stDataFrame"], canvas.upper-canvas, [data-testid="stMetric"], button')) {
    if (!visible(element)) continue;
    const r = element.getBoundingClientRect();
    if (r.right > width + 1 || r.left < -1) problems.push(`${element.tagName} ${element.dataset.testid || ''} reaches ${Math.round(r.left)}..${Math.round(r.right)} of ${width}`);
  }
  // A data grid that scrolls sideways hides columns.
  for (const grid of document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')) {
    if (grid.scrollWidth > grid.clientWidth + 2) problems.push(`a table hides columns (${grid.scrollWidth} > ${grid.clientWidth})`);
  }
  // A static table that scrolls sideways hides columns too, and keyboard users cannot scroll it (axe's
  // scrollable-region-focusable): the epoch table on a phone was 401 px in a 354 px box.
  for (const table of document.querySelectorAll('[data-testid="stTable"] > div')) {
    if (visible(table) && table.scrollWidth > table.clientWidth + 1) problems.push(`a table scrolls sideways (${table.scrollWidth} > ${table.clientWidth}): ${table.innerText.split(/\s+/).slice(0, 4).join(' ')}`);
  }
  // A label may wrap between words, never inside one.
  const probe = document.createElement('span');
  probe.style.cssText = 'position:absolute;visibility:hidden;white-space:nowrap';
  document.body.appendChild(probe);
  for (const label of document.querySelectorAll('[data-testid="stWidgetLabel"] p, [data-testid="stWidgetLabel"] label')) {
    if (!visible(label)) continue;
    probe.style.font = getComputedStyle(label).font;
    for (const word of label.innerText.split(/\s+/)) {
      probe.textContent = word;
      if (probe.getBoundingClientRect().width > label.getBoundingClientRect().width + 1) problems.push(`the label "${label.innerText}" breaks inside "${word}"`);
    }
  }
  probe.remove();
  // Pictures side by side must not overlap.
  const images = [...document.querySelectorAll('[data-testid="stImage"] img')].filter(visible).map((image) => image.getBoundingClientRect());
  for (let i = 0; i < images.length; i++) for (let j = i + 1; j < images.length; j++) {
    const a = images[i], b = images[j];
    if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) problems.push('two pictures overlap');
  }
  // Text cut short with an ellipsis hides words ("Block 1: max poo...").
  const shortened = '[data-testid="stWidgetLabel"] *, [data-baseweb="select"] div, [data-testid="stCheckbox"] *, [data-testid="stMetricLabel"] *, [data-testid="stMetricValue"] *, button p, [data-testid="stTab"] p';
  for (const element of document.querySelectorAll(shortened)) {
    if (!visible(element) || element.children.length) continue;
    if (getComputedStyle(element).textOverflow === 'ellipsis' && element.scrollWidth > element.clientWidth + 1) problems.push(`"${element.innerText}" is cut short`);
  }
  // Text cut off without an ellipsis hides words too: a page link's label on a phone ended "onu kand".
  for (const element of document.querySelectorAll('[data-testid="stPageLink-NavLink"] p, [data-testid="stPageLink-NavLink"] span')) {
    if (!visible(element) || element.querySelector('p, span')) continue;
    if (element.scrollWidth > element.clientWidth + 1) problems.push(`the link "${element.innerText}" is cut off`);
  }
  // A projector has no height to spare: the page's title starts right under the header.
  const title = document.querySelector('[data-testid="stMainBlockContainer"] h1');
  const header = document.querySelector('[data-testid="stHeader"]');
  const below = header ? header.getBoundingClientRect().bottom : 0;
  const gap = title ? title.getBoundingClientRect().top - below : 0;
  if (title && visible(title) && window.scrollY === 0 && gap > 90) problems.push(`${Math.round(gap)} px of empty space above the title`);
  // The button that opens the menu and the language choice says so in words.
  const opener = document.querySelector('[data-testid="stExpandSidebarButton"]');
  if (opener && visible(opener) && !/[A-Za-zÇçĞğİıÖöŞşÜü]/.test(getComputedStyle(opener, '::after').content)) problems.push('the menu button has no label');
  if (document.scrollingElement.scrollWidth > width + 1) problems.push(`the page scrolls sideways (${document.scrollingElement.scrollWidth} > ${width})`);
  return problems;
}
