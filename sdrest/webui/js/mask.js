// The inpainting mask editor: a canvas at the image's resolution over the image, painted with pointer events (a
// mouse, a finger or a pen). A brush and an eraser, undo and redo, clear and invert, zoom (the wheel, the buttons,
// two fingers) and pan (Space+drag, the middle button, two fingers). The mask leaves as the server takes it: a
// PNG of the image's size, white where to redraw, black where to keep.
//
// What was painted is a list of operations (strokes, clears, inverts) replayed onto the canvas, so undo costs no
// copies of the pixels whatever the image's size.

import { h } from './dom.js';

const MIN_BRUSH = 1;
const MAX_BRUSH = 256;
const MAX_ZOOM = 32;
const PAINT = '#ff2d6f';

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

export class MaskEditor {
  /** `onChange()` is called after each change of the mask. */
  constructor({ onChange = () => {} } = {}) {
    this.onChange = onChange;
    this.ops = [];
    this.undone = [];
    this.size = 16;
    this.erasing = false;
    this.zoom = 1;
    this.pan = { x: 0, y: 0 };
    this.fitted = true;
    this.pointers = new Map();  // pointerId -> {x, y} (client coordinates), while down
    this.gesture = null;  // {type: 'paint' | 'pan' | 'pinch', ...}
    this.spaceHeld = false;

    this.canvas = h('canvas', { class: 'mask-canvas', width: 1, height: 1 });
    this.ctx = this.canvas.getContext('2d', { willReadFrequently: true });
    this.image = h('img', { class: 'mask-image', alt: '' });
    this.image.draggable = false;
    this.view = h('div', { class: 'mask-view' }, this.image, this.canvas);
    this.cursor = h('div', { class: 'mask-cursor', hidden: true });
    this.stage = h('div', {
      class: 'mask-stage', id: 'f-mask_image', tabindex: 0, role: 'application',
      'aria-label': 'Mask: paint where to redraw', 'aria-describedby': 'hint-mask_image err-mask_image',
    }, this.view, this.cursor);
    this.brush = h('input', {
      type: 'range', id: 'mask-brush', min: MIN_BRUSH, max: MAX_BRUSH, value: this.size,
      oninput: () => this.setBrush(Number(this.brush.value)),
    });
    this.brushOut = h('output', { for: 'mask-brush', class: 'mask-brush-value' }, String(this.size));
    const tool = (label, onclick, extra = {}) => h('button', { type: 'button', class: 'ghost', onclick, ...extra }, label);
    this.eraser = tool('Eraser', () => this.setEraser(!this.erasing), { 'aria-pressed': 'false', title: 'Erase (paint back what to keep)' });
    this.undoButton = tool('Undo', () => this.undo(), { title: 'Undo (Ctrl+Z)' });
    this.redoButton = tool('Redo', () => this.redo(), { title: 'Redo (Ctrl+Shift+Z)' });
    this.root = h('div', { class: 'mask-editor' },
      h('div', { class: 'mask-tools', role: 'toolbar', 'aria-label': 'Mask tools' },
        h('div', { class: 'mask-brush' }, h('label', { for: 'mask-brush' }, 'Brush size'), this.brush, this.brushOut),
        h('div', { class: 'mask-buttons' },
          this.eraser, this.undoButton, this.redoButton,
          tool('Clear', () => this.apply({ type: 'clear' }), { title: 'Keep everything' }),
          tool('Invert', () => this.apply({ type: 'invert' }), { title: 'Swap what is redrawn and what is kept' }),
          tool('−', () => this.zoomBy(1 / 1.25), { 'aria-label': 'Zoom out', title: 'Zoom out (wheel)' }),
          tool('+', () => this.zoomBy(1.25), { 'aria-label': 'Zoom in', title: 'Zoom in (wheel)' }),
          tool('Fit', () => this.fit(), { title: 'The whole image' }))),
      this.stage,
      h('p', { class: 'hint', id: 'hint-mask_image' },
        'Paint where to redraw. [ and ] size the brush; Space+drag, the middle button or two fingers pan; '
        + 'the wheel zooms; Ctrl+Z undoes.'),
      h('p', { class: 'field-error', id: 'err-mask_image', hidden: true }));
    this.updateButtons();
    this.listen();
    new ResizeObserver(() => { if (this.fitted) this.fit(); }).observe(this.stage);
  }

  /** Edit a mask for the image at `url` (a data URL): the canvas takes its size, the mask starts empty. */
  async setImage(url) {
    if (url === this.url) return;
    this.url = url;
    this.image.src = url;
    await this.image.decode();
    const { naturalWidth: w, naturalHeight: h } = this.image;
    this.canvas.width = w;
    this.canvas.height = h;
    this.view.style.width = `${w}px`;
    this.view.style.height = `${h}px`;
    this.stage.style.aspectRatio = `${w} / ${h}`;
    this.ops = [];
    this.undone = [];
    this.setBrush(clamp(Math.round(Math.min(w, h) / 12), MIN_BRUSH, 64));
    this.redraw();
    this.fit();
    this.onChange();
  }

  get width() {
    return this.canvas.width;
  }

  get height() {
    return this.canvas.height;
  }

  /** Whether nothing is marked to redraw. */
  isEmpty() {
    const { data } = this.ctx.getImageData(0, 0, this.width, this.height);
    for (let i = 3; i < data.length; i += 4) if (data[i]) return false;
    return true;
  }

  /** The mask as the server takes it: a PNG data URL of the image's size, white = redraw, black = keep. */
  toDataURL() {
    const out = h('canvas', { width: this.width, height: this.height });
    const ctx = out.getContext('2d');
    const pixels = this.ctx.getImageData(0, 0, this.width, this.height);
    const { data } = pixels;
    for (let i = 0; i < data.length; i += 4) {
      const v = data[i + 3];
      data[i] = v;
      data[i + 1] = v;
      data[i + 2] = v;
      data[i + 3] = 255;
    }
    ctx.putImageData(pixels, 0, 0);
    return out.toDataURL('image/png');
  }

  setBrush(size) {
    this.size = clamp(Math.round(size), MIN_BRUSH, MAX_BRUSH);
    this.brush.value = String(this.size);
    this.brushOut.textContent = String(this.size);
    this.placeCursor();
  }

  setEraser(on) {
    this.erasing = on;
    this.eraser.setAttribute('aria-pressed', String(on));
    this.stage.classList.toggle('erasing', on);
  }

  // -- operations --------------------------------------------------------------------------------------------

  draw(op, from = 0) {
    const ctx = this.ctx;
    ctx.save();
    if (op.type === 'clear') ctx.clearRect(0, 0, this.width, this.height);
    else if (op.type === 'invert') {
      ctx.globalCompositeOperation = 'xor';  // painted -> clear, clear -> painted (alpha 1 - a)
      ctx.fillStyle = PAINT;
      ctx.fillRect(0, 0, this.width, this.height);
    } else {
      ctx.globalCompositeOperation = op.erase ? 'destination-out' : 'source-over';
      ctx.strokeStyle = PAINT;
      ctx.fillStyle = PAINT;
      ctx.lineWidth = op.size;
      ctx.lineCap = 'round';
      ctx.lineJoin = 'round';
      const points = op.points;
      if (points.length === 1) {
        ctx.beginPath();
        ctx.arc(points[0][0], points[0][1], op.size / 2, 0, 2 * Math.PI);
        ctx.fill();
      } else {
        ctx.beginPath();
        const start = Math.max(0, from - 1);
        ctx.moveTo(...points[start]);
        for (let i = start + 1; i < points.length; i += 1) ctx.lineTo(...points[i]);
        ctx.stroke();
      }
    }
    ctx.restore();
  }

  redraw() {
    this.ctx.clearRect(0, 0, this.width, this.height);
    for (const op of this.ops) this.draw(op);
  }

  apply(op) {
    this.ops.push(op);
    this.undone = [];
    this.draw(op);
    this.changed();
  }

  undo() {
    if (!this.ops.length) return;
    this.undone.push(this.ops.pop());
    this.redraw();
    this.changed();
  }

  redo() {
    if (!this.undone.length) return;
    const op = this.undone.pop();
    this.ops.push(op);
    this.draw(op);
    this.changed();
  }

  changed() {
    this.updateButtons();
    this.onChange();
  }

  updateButtons() {
    this.undoButton.disabled = !this.ops.length;
    this.redoButton.disabled = !this.undone.length;
  }

  // -- the view: zoom and pan ----------------------------------------------------------------------------------

  place() {
    this.view.style.transform = `translate(${this.pan.x}px, ${this.pan.y}px) scale(${this.zoom})`;
    this.stage.classList.toggle('zoomed-in', this.zoom > 2);
    this.placeCursor();
  }

  /** The whole image, centred in the stage. */
  fit() {
    const w = this.stage.clientWidth;
    const hh = this.stage.clientHeight;
    if (!w || !hh || !this.width) return;
    this.zoom = Math.min(w / this.width, hh / this.height);
    this.pan = { x: (w - this.width * this.zoom) / 2, y: (hh - this.height * this.zoom) / 2 };
    this.fitted = true;
    this.place();
  }

  /** Zoom by `factor` around the stage point (`x`, `y`) (default: the centre). */
  zoomBy(factor, x = this.stage.clientWidth / 2, y = this.stage.clientHeight / 2) {
    const fit = Math.min(this.stage.clientWidth / this.width, this.stage.clientHeight / this.height) || 1;
    const zoom = clamp(this.zoom * factor, Math.min(fit, 1) / 4, MAX_ZOOM);
    this.pan = { x: x - ((x - this.pan.x) * zoom) / this.zoom, y: y - ((y - this.pan.y) * zoom) / this.zoom };
    this.zoom = zoom;
    this.fitted = false;
    this.place();
  }

  stagePoint(event) {
    const rect = this.stage.getBoundingClientRect();
    return { x: event.clientX - rect.left - this.stage.clientLeft, y: event.clientY - rect.top - this.stage.clientTop };
  }

  /** The image pixel under a pointer event. */
  imagePoint(event) {
    const p = this.stagePoint(event);
    return [(p.x - this.pan.x) / this.zoom, (p.y - this.pan.y) / this.zoom];
  }

  placeCursor(event = this.lastHover) {
    if (!event || this.gesture?.type === 'pan' || this.spaceHeld) {
      this.cursor.hidden = true;
      return;
    }
    const p = this.stagePoint(event);
    const d = this.size * this.zoom;
    Object.assign(this.cursor.style, { width: `${d}px`, height: `${d}px`, left: `${p.x - d / 2}px`, top: `${p.y - d / 2}px` });
    this.cursor.hidden = false;
  }

  // -- pointers ----------------------------------------------------------------------------------------------

  listen() {
    const stage = this.stage;
    stage.addEventListener('pointerdown', (event) => this.down(event));
    stage.addEventListener('pointermove', (event) => this.move(event));
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) {
      stage.addEventListener(type, (event) => this.up(event));
    }
    stage.addEventListener('pointerleave', () => { this.lastHover = null; this.cursor.hidden = true; });
    stage.addEventListener('wheel', (event) => {
      event.preventDefault();
      const p = this.stagePoint(event);
      this.zoomBy(Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015)), p.x, p.y);
    }, { passive: false });
    stage.addEventListener('contextmenu', (event) => event.preventDefault());
    stage.addEventListener('auxclick', (event) => event.preventDefault());
  }

  down(event) {
    if (!this.width) return;
    event.preventDefault();
    this.stage.focus({ preventScroll: true });
    this.stage.setPointerCapture(event.pointerId);
    this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (this.pointers.size === 2) {
      // a second finger: the stroke the first one began was the start of a pinch, not paint
      if (this.gesture?.type === 'paint' && this.gesture.op) {
        this.ops.pop();
        this.redraw();
        this.changed();
      }
      const [a, b] = [...this.pointers.values()];
      this.gesture = { type: 'pinch', distance: Math.hypot(a.x - b.x, a.y - b.y), mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
      return;
    }
    if (this.pointers.size > 2) return;
    if (event.button === 1 || (event.button === 0 && this.spaceHeld)) {
      this.gesture = { type: 'pan', x: event.clientX, y: event.clientY };
      this.stage.classList.add('panning');
      this.placeCursor();
    } else if (event.button === 0) {
      const op = { type: 'stroke', erase: this.erasing, size: this.size, points: [this.imagePoint(event)] };
      this.gesture = { type: 'paint', op };
      this.ops.push(op);
      this.undone = [];
      this.draw(op);
    }
  }

  move(event) {
    if (event.pointerType !== 'touch') this.lastHover = event;
    const gesture = this.gesture;
    if (this.pointers.has(event.pointerId)) this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (!gesture) {
      this.placeCursor(event);
      return;
    }
    if (gesture.type === 'paint') {
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      const from = gesture.op.points.length;
      for (const e of events.length ? events : [event]) gesture.op.points.push(this.imagePoint(e));
      this.draw(gesture.op, from);
      this.placeCursor(event);
    } else if (gesture.type === 'pan') {
      this.pan = { x: this.pan.x + event.clientX - gesture.x, y: this.pan.y + event.clientY - gesture.y };
      gesture.x = event.clientX;
      gesture.y = event.clientY;
      this.fitted = false;
      this.place();
    } else if (gesture.type === 'pinch' && this.pointers.size >= 2) {
      const [a, b] = [...this.pointers.values()];
      const distance = Math.hypot(a.x - b.x, a.y - b.y);
      const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
      this.pan = { x: this.pan.x + mid.x - gesture.mid.x, y: this.pan.y + mid.y - gesture.mid.y };
      const rect = this.stage.getBoundingClientRect();
      if (gesture.distance > 0) this.zoomBy(distance / gesture.distance, mid.x - rect.left, mid.y - rect.top);
      Object.assign(gesture, { distance, mid });
    }
  }

  up(event) {
    if (!this.pointers.delete(event.pointerId)) return;
    const gesture = this.gesture;
    if (gesture?.type === 'paint') this.changed();
    if (this.pointers.size === 0 || gesture?.type !== 'pinch') {
      this.gesture = null;
      this.stage.classList.remove('panning');
    }
  }

  // -- keys ----------------------------------------------------------------------------------------------------

  /** Handle a key pressed outside text fields while the editor is shown; true when it was the editor's. */
  key(event) {
    const mod = event.ctrlKey || event.metaKey;
    if (event.type === 'keyup') {
      if (event.code === 'Space') {
        this.spaceHeld = false;
        this.stage.classList.remove('space');
        return true;
      }
      return false;
    }
    if (mod && !event.altKey && event.key.toLowerCase() === 'z') {
      if (event.shiftKey) this.redo();
      else this.undo();
    } else if (mod && !event.altKey && event.key.toLowerCase() === 'y') this.redo();
    else if (mod || event.altKey) return false;
    else if (event.key === '[') this.setBrush(this.size - Math.max(1, Math.round(this.size * 0.15)));
    else if (event.key === ']') this.setBrush(this.size + Math.max(1, Math.round(this.size * 0.15)));
    else if (event.code === 'Space' && (event.target === this.stage || event.target === document.body)) {
      this.spaceHeld = true;
      this.stage.classList.add('space');
      this.placeCursor();
    } else return false;
    event.preventDefault();
    return true;
  }
}
