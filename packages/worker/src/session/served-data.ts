// --serve-data: the training split arrives from the coordinator in train_data chunks right after
// the welcome; this assembles it and checks it against the fingerprint the welcome named.
import { splitFingerprint, type DataSpec, type Split, type TrainDataMessage } from '@ddp/core';

export class ServedSplit {
  private readonly split: Split;
  private received = 0;

  constructor(private readonly spec: DataSpec) {
    this.split = { images: new Uint8Array(spec.trainCount * spec.rows * spec.cols), labels: new Uint8Array(spec.trainCount), count: spec.trainCount, rows: spec.rows, cols: spec.cols };
  }

  /** Adds one chunk (validated: in bounds); chunks must come in order. Returns the split once complete. */
  add(msg: TrainDataMessage): Split | null {
    if (msg.offset !== this.received) throw new Error(`train_data: samples from ${msg.offset} arrived, expected from ${this.received}`);
    const px = this.spec.rows * this.spec.cols;
    this.split.images.set(msg.images, msg.offset * px);
    this.split.labels.set(msg.labels, msg.offset);
    this.received += msg.labels.length;
    if (this.received < this.spec.trainCount) return null;
    const got = splitFingerprint(this.split);
    if (got !== this.spec.fingerprint) throw new Error(`the training data sent by the coordinator does not match its fingerprint (${got.slice(0, 12)}… against ${this.spec.fingerprint.slice(0, 12)}…)`);
    return this.split;
  }
}
