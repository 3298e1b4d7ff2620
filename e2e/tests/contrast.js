// Measuring WCAG AA contrast on the live page: computed colours, alpha composited over the real
// background (every ancestor's background, and opacity), the contrast ratio of WCAG 2.x.
// Text needs 4.5:1 (3:1 when large: 24 px, or 18.66 px bold); the border or fill that shows where
// a control is, and a focus outline, need 3:1 against what is around them (WCAG 1.4.11).

/**
 * Runs in the page. Audits every visible element with its own text inside `scope` (or the one
 * element `only`), and every control's boundary; returns the failures.
 */
function auditInPage({ scope, only, state }) {
  const parse = (value) => {
    const numbers = (value.match(/[\d.]+/g) || []).map(Number);
    if (value === 'transparent' || numbers.length < 3) return [0, 0, 0, 0];
    return [numbers[0], numbers[1], numbers[2], numbers.length > 3 ? numbers[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
  };
  const luminance = ([r, g, b]) => {
    const f = (c) => { const s = c / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const opacity = (element) => {
    let value = 1;
    for (let e = element; e && e.nodeType === 1; e = e.parentElement) value *= Number(getComputedStyle(e).opacity);
    return value;
  };
  /** The colour behind `element`: the canvas, then each ancestor's background from the root down. */
  const background = (element) => {
    const chain = [];
    for (let e = element; e && e.nodeType === 1; e = e.parentElement) chain.push(e);
    let colour = [255, 255, 255, 1];
    for (const e of chain.reverse()) {
      const layer = parse(getComputedStyle(e).backgroundColor);
      layer[3] *= Number(getComputedStyle(e).opacity);
      if (layer[3] > 0) colour = over(layer, colour);
      // An SVG shape under a text: the rect of the same group that contains the text's centre.
      if (e.tagName === 'text' && e.parentNode) {
        const box = e.getBoundingClientRect();
        const [cx, cy] = [box.x + box.width / 2, box.y + box.height / 2];
        for (const shape of e.parentNode.querySelectorAll(':scope > rect')) {
          const r = shape.getBoundingClientRect();
          if (cx >= r.left && cx <= r.right && cy >= r.top && cy <= r.bottom) {
            colour = over(parse(getComputedStyle(shape).fill), colour);
          }
        }
      }
    }
    return colour;
  };
  const visible = (element) => {
    const box = element.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) return false;
    const style = getComputedStyle(element);
    if (style.visibility !== 'visible' || style.display === 'none') return false;
    for (let e = element; e && e.nodeType === 1; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.clip && s.clip !== 'auto') return false;
      if (s.display === 'none') return false;
    }
    return true;
  };
  const describe = (element) => {
    const parts = [];
    for (let e = element; e && e.nodeType === 1 && parts.length < 4; e = e.parentElement) {
      const id = e.getAttribute('data-testid');
      parts.unshift(id ? `[${id}]` : `${e.tagName.toLowerCase()}${e.classList.length ? `.${[...e.classList].join('.')}` : ''}`);
      if (id) break;
    }
    return parts.join(' > ');
  };
  const rgb = (c) => `rgb(${c.slice(0, 3).map(Math.round).join(',')})`;
  const failures = [];
  const checked = { text: 0, controls: 0 };
  const fail = (element, kind, got, need, fg, bg, extra = '') => failures.push({
    state, kind, where: describe(element), text: (element.textContent || element.value || '').trim().slice(0, 40),
    ratio: Math.round(got * 100) / 100, need, fg: rgb(fg), bg: rgb(bg), extra,
  });

  const root = only ?? document.querySelector(scope ?? 'body');
  const elements = only ? [only, ...only.querySelectorAll('*')] : [root, ...root.querySelectorAll('*')];
  for (const element of elements) {
    const tag = element.tagName.toLowerCase();
    if (['script', 'style', 'title', 'option', 'noscript'].includes(tag) || element.closest('select')) continue;
    if (!visible(element)) continue;
    const style = getComputedStyle(element);
    const ownText = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
    const isField = tag === 'input' || tag === 'select';
    if (ownText || isField) {
      const bg = background(element);
      const isSvg = element instanceof SVGElement;
      const fg = parse(isSvg ? style.fill : style.color);
      fg[3] *= opacity(element);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      const need = large ? 3 : 4.5;
      const got = ratio(over(fg, bg), bg);
      checked.text += 1;
      if (got < need) fail(element, 'text', got, need, over(fg, bg), bg);
      if (tag === 'input' && element.value === '' && element.placeholder) {
        const placeholder = parse(getComputedStyle(element, '::placeholder').color);
        const pr = ratio(over(placeholder, bg), bg);
        if (pr < 4.5) fail(element, 'placeholder', pr, 4.5, over(placeholder, bg), bg);
      }
    }
    // The boundary of a control: its border or its own fill against what is around it.
    const isControl = isField || (tag === 'button' && !element.classList.contains('link') && !element.classList.contains('chain-row'));
    if (isControl) {
      checked.controls += 1;
      const outside = background(element.parentElement);
      const inside = background(element);
      const border = parse(style.borderTopColor);
      const borderWidth = parseFloat(style.borderTopWidth);
      const byBorder = borderWidth >= 1 && border[3] > 0 ? ratio(over(border, outside), outside) : 0;
      const byFill = ratio(inside, outside);
      if (Math.max(byBorder, byFill) < 3) {
        fail(element, 'control boundary', Math.max(byBorder, byFill), 3, over(border, outside), outside,
          `border ${byBorder.toFixed(2)}, fill ${byFill.toFixed(2)}`);
      }
    }
  }
  return { failures, checked };
}

/** The focus ring of the focused element: present, at least 2 px, 3:1 against what it is drawn on. */
function focusRingInPage({ state }) {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const parse = (value) => {
    const numbers = (value.match(/[\d.]+/g) || []).map(Number);
    if (value === 'transparent' || numbers.length < 3) return [0, 0, 0, 0];
    return [numbers[0], numbers[1], numbers[2], numbers.length > 3 ? numbers[3] : 1];
  };
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const luminance = ([r, g, b]) => {
    const f = (c) => { const s = c / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => { const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x); return (hi + 0.05) / (lo + 0.05); };
  const background = (start) => {
    const chain = [];
    for (let e = start; e && e.nodeType === 1; e = e.parentElement) chain.push(e);
    let colour = [255, 255, 255, 1];
    for (const e of chain.reverse()) {
      const layer = parse(getComputedStyle(e).backgroundColor);
      if (layer[3] > 0) colour = over(layer, colour);
    }
    return colour;
  };
  const style = getComputedStyle(element);
  const id = element.getAttribute('data-testid') || `${element.tagName.toLowerCase()}.${[...element.classList].join('.')}`;
  const width = parseFloat(style.outlineWidth);
  if (style.outlineStyle === 'none' || width < 2) {
    return { state, kind: 'focus ring', where: id, ratio: 0, need: 3, extra: `outline ${style.outlineStyle} ${style.outlineWidth}` };
  }
  // An outline drawn inside the element (negative offset) sits on the element's own fill.
  const behind = parseFloat(style.outlineOffset) + width <= 0 ? background(element) : background(element.parentElement);
  const colour = over(parse(style.outlineColor), behind);
  const got = ratio(colour, behind);
  return got < 3 ? { state, kind: 'focus ring', where: id, ratio: Math.round(got * 100) / 100, need: 3, extra: style.outlineColor } : 'ok';
}

/** Puts the audit into the page as `window.__audit` (again after a reload). */
async function install(page) {
  await page.evaluate(`window.__audit = ${auditInPage.toString()}`);
}

/** Audits the whole page (or `scope`) as it is now. */
export async function auditPage(page, state, scope) {
  await install(page);
  return page.evaluate((arg) => window.__audit(arg), { scope, state });
}

/** Hovers every visible control with the real mouse and audits it while hovered. */
export async function auditHover(page, state, scope = 'body') {
  await install(page);
  const total = await page.evaluate((root) => {
    // Two of each kind (tag, classes, test id): forty explorer rows hover alike.
    const kinds = new Map();
    const controls = [...document.querySelector(root).querySelectorAll('button, select, input, a')]
      .filter((e) => e.getBoundingClientRect().width > 1)
      .filter((e) => {
        const kind = `${e.tagName}.${e.className}.${e.dataset.testid ?? ''}`;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        return kinds.get(kind) <= 2;
      });
    controls.forEach((e, i) => { e.dataset.auditIndex = String(i); });
    return controls.length;
  }, scope);
  const failures = [];
  for (let i = 0; i < total; i += 1) {
    const point = await page.evaluate((index) => {
      const e = document.querySelector(`[data-audit-index="${index}"]`);
      if (!e) return null;
      e.scrollIntoView({ block: 'center', inline: 'center' });
      const r = e.getBoundingClientRect();
      return { x: r.x + r.width / 2, y: r.y + r.height / 2 };
    }, i);
    if (!point) continue;
    await page.mouse.move(point.x, point.y);
    const result = await page.evaluate(({ index, label }) => {
      const e = document.querySelector(`[data-audit-index="${index}"]`);
      if (!e || !e.matches(':hover')) return null;
      return window.__audit({ only: e, state: label });
    }, { index: i, label: `${state}, hovered` });
    if (result) failures.push(...result.failures);
  }
  await page.mouse.move(0, 0);
  return failures;
}

/** Tabs through every focusable control with the keyboard and checks each focus ring. */
export async function auditFocus(page, state, maxStops = 200) {
  const failures = [];
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  let first = null;
  let stops = 0;
  for (; stops < maxStops; stops += 1) {
    await page.keyboard.press('Tab');
    const key = await page.evaluate(() => {
      const e = document.activeElement;
      if (!e || e === document.body) return null;
      if (!e.dataset.focusStop) e.dataset.focusStop = String(Math.random());
      return e.dataset.focusStop;
    });
    if (key === null) continue;
    if (key === first) break;
    first ??= key;
    const result = await page.evaluate(focusRingInPage, { state: `${state}, focused` });
    if (result && result !== 'ok') failures.push(result);
  }
  return { failures, stops };
}

/** Makes each kind of button disabled for a moment and audits it so. */
export async function auditDisabled(page, state) {
  await install(page);
  return page.evaluate((label) => {
    const seen = new Set();
    const failures = [];
    for (const button of document.querySelectorAll('button')) {
      const kind = [...button.classList].sort().join('.');
      if (seen.has(kind) || button.disabled || button.getBoundingClientRect().width === 0) continue;
      seen.add(kind);
      button.disabled = true;
      failures.push(...window.__audit({ only: button, state: label }).failures);
      button.disabled = false;
    }
    return failures;
  }, `${state}, disabled`);
}
