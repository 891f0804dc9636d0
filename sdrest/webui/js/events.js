// The all-jobs event stream (/api/events) over Server-Sent Events, reconnecting by itself with a back-off.

const EVENTS = ['hello', 'state', 'progress', 'preview', 'counts', 'model', 'server'];

/** Follow `url`, calling `onEvent(type, data)` for each event and `onConnection('live' | 'reconnecting')`. */
export class EventStream {
  constructor(url, onEvent, onConnection) {
    this.url = url;
    this.onEvent = onEvent;
    this.onConnection = onConnection;
    this.source = null;
    this.delay = 1000;
    this.timer = null;
    this.stopped = false;
  }

  /** Open the stream (again). */
  start() {
    this.stopped = false;
    this.close();
    const source = new EventSource(this.url);
    this.source = source;
    source.onopen = () => {
      this.delay = 1000;
      this.onConnection('live');
    };
    // EventSource retries a dropped stream but gives up on an HTTP error: retry both ourselves
    source.onerror = () => {
      if (this.source !== source) return;
      this.close();
      this.onConnection('reconnecting');
      if (!this.stopped) {
        this.timer = setTimeout(() => this.start(), this.delay);
        this.delay = Math.min(this.delay * 2, 15000);
      }
    };
    for (const type of EVENTS) {
      source.addEventListener(type, (message) => {
        let data;
        try {
          data = JSON.parse(message.data);
        } catch {
          return;
        }
        this.onEvent(type, data);
      });
    }
  }

  close() {
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
  }

  /** Close the stream for good (log-out). */
  stop() {
    this.stopped = true;
    this.close();
  }
}
