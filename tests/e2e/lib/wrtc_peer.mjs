// A WebRTC peer in Node (@roamhq/wrtc, libwebrtc with its binary inside the
// npm package) that signals through goring: one RTCPeerConnection bound to a
// WireClient and a call's session id.
//
// The peer takes webrtc.offer, webrtc.answer and webrtc.ice frames from its
// client one at a time, in order (a candidate that arrives while the offer is
// still being applied waits for it), and sends its own description and
// candidates (with sdpMid and sdpMLineIndex) as goring expects them. The
// caller opens one data channel, `bytes`; the callee answers any offer.
// Whatever arrives on the channel is kept from its first message on, so no
// bytes are lost between the channel opening and the test reading them.
import { createHash, randomBytes } from 'node:crypto';
import wrtc from '@roamhq/wrtc';
import { waitFor } from './cluster.mjs';

const { RTCPeerConnection } = wrtc;
const CHUNK = 16 * 1024; // the message size every WebRTC stack accepts

export class WrtcPeer {
  /**
   * `config` is the RTCConfiguration (iceServers, iceTransportPolicy).
   * `role` is 'caller' (opens the channel, sends the offer: call start())
   * or 'callee' (answers the offer it receives).
   */
  constructor(client, sessionId, role, config = {}) {
    this.client = client;
    this.sessionId = sessionId;
    this.role = role;
    this.name = `${client.userId} (${role})`;
    this.pc = new RTCPeerConnection(config);
    this.localCandidates = [];
    this.candidateErrors = [];
    this.failures = []; // errors of the signaling pump, reported by connected()
    this.chunks = [];
    this.receivedBytes = 0;
    this.channel = null;

    this.pc.onicecandidate = ({ candidate }) => {
      if (!candidate) return; // end of candidates: nothing to send
      this.localCandidates.push(candidate.candidate);
      client.send('webrtc.ice', {
        session_id: sessionId,
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid,
        sdpMLineIndex: candidate.sdpMLineIndex,
      });
    };
    this.pc.onicecandidateerror = (e) => {
      this.candidateErrors.push({ url: e.url, errorCode: e.errorCode, errorText: e.errorText });
    };
    this.pc.ondatachannel = ({ channel }) => this.#adopt(channel);

    // One frame at a time: each waits for the previous one's promise.
    let pump = Promise.resolve();
    const queue = (handle) => (payload) => {
      pump = pump.then(() => handle(payload)).catch((err) => this.failures.push(err));
    };
    client.route('webrtc.offer', queue((p) => this.#onOffer(p)));
    client.route('webrtc.answer', queue((p) => this.pc.setRemoteDescription({ type: 'answer', sdp: p.sdp })));
    client.route(
      'webrtc.ice',
      queue((p) => this.pc.addIceCandidate({ candidate: p.candidate, sdpMid: p.sdpMid, sdpMLineIndex: p.sdpMLineIndex })),
    );
  }

  #adopt(channel) {
    channel.binaryType = 'arraybuffer';
    channel.onmessage = ({ data }) => {
      const chunk = Buffer.from(typeof data === 'string' ? Buffer.from(data) : new Uint8Array(data));
      this.chunks.push(chunk);
      this.receivedBytes += chunk.length;
    };
    this.channel = channel;
  }

  async #onOffer({ sdp }) {
    await this.pc.setRemoteDescription({ type: 'offer', sdp });
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this.client.send('webrtc.answer', { session_id: this.sessionId, sdp: this.pc.localDescription.sdp });
  }

  /** Caller: opens the `bytes` channel and sends the offer. */
  async start() {
    this.#adopt(this.pc.createDataChannel('bytes'));
    await this.pc.setLocalDescription(await this.pc.createOffer());
    this.client.send('webrtc.offer', { session_id: this.sessionId, sdp: this.pc.localDescription.sdp });
  }

  /** Waits until connectionState is `connected`; fails early on `failed` or a signaling error. */
  connected(ms = 15_000) {
    return waitFor(`${this.name} to be connected`, () => {
      if (this.failures.length) throw new Error(`${this.name}: signaling failed: ${this.failures[0].message}`);
      if (this.pc.connectionState === 'failed') throw new Error(`${this.name}: connection failed`);
      return this.pc.connectionState === 'connected';
    }, ms);
  }

  /** Waits until the data channel (opened by either side) is open. */
  channelOpen(ms = 15_000) {
    return waitFor(`${this.name}'s data channel to open`, () => this.channel?.readyState === 'open', ms);
  }

  /** Sends `bytes` over the channel in 16 KiB messages, keeping at most 1 MiB buffered. */
  async sendBytes(bytes) {
    for (let off = 0; off < bytes.length; off += CHUNK) {
      if (this.channel.bufferedAmount > 1024 * 1024)
        await waitFor(`${this.name}'s channel to drain`, () => this.channel.bufferedAmount <= 256 * 1024, 15_000, 5);
      this.channel.send(bytes.subarray(off, Math.min(off + CHUNK, bytes.length)));
    }
  }

  /** Waits until `count` bytes have arrived on the channel; returns them. */
  async receiveBytes(count, ms = 20_000) {
    await waitFor(`${this.name} to receive ${count} bytes (has ${this.receivedBytes})`, () => this.receivedBytes >= count, ms, 10);
    return Buffer.concat(this.chunks);
  }

  /**
   * The transport's selected candidate pair from getStats: the pair and its
   * local and remote candidates (candidateType host, srflx, prflx or relay).
   */
  async selectedPair() {
    const stats = await this.pc.getStats();
    let pair;
    for (const s of stats.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    }
    if (!pair) throw new Error(`${this.name}: no selected candidate pair in getStats`);
    return { pair, local: stats.get(pair.localCandidateId), remote: stats.get(pair.remoteCandidateId) };
  }

  close() {
    this.pc.close();
  }
}

export function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Sends `size` random bytes each way between two connected peers at once and
 * checks that each side received exactly what the other sent (SHA-256).
 * Returns the two digests.
 */
export async function exchangeBytes(a, b, size = 256 * 1024) {
  await Promise.all([a.channelOpen(), b.channelOpen()]);
  const fromA = randomBytes(size);
  const fromB = randomBytes(size);
  await Promise.all([a.sendBytes(fromA), b.sendBytes(fromB)]);
  const [atB, atA] = await Promise.all([b.receiveBytes(size), a.receiveBytes(size)]);
  const result = {
    sentByA: sha256(fromA),
    receivedByB: sha256(atB),
    sentByB: sha256(fromB),
    receivedByA: sha256(atA),
    lengths: [atB.length, atA.length],
  };
  return result;
}
