/**
 * The traffic benchmark's sink: bpf/bench/xdp_sink.bpf.c on the sink
 * namespace's interface, counting every UDP packet by the last byte of its
 * destination address, then dropping it.
 */
import { loadObject, ipToU32, u32 } from './bench-objects.js';
import type { AddonDataplane } from '../../src/dataplane/native.js';
import type { TrafficTopology } from './traffic-topology.js';

/** The sink: an XDP program in the sink namespace counting per backend address. */
export class Sink {
  private constructor(private readonly dp: AddonDataplane, private readonly topo: TrafficTopology) {}

  static async attach(topo: TrafficTopology): Promise<Sink> {
    const dp = await loadObject('xdp_sink');
    try {
      dp.attachXdp(topo.sink.ifindex, 'native', topo.sink.nsPath);
    } catch (err) {
      dp.close();
      throw err;
    }
    return new Sink(dp, topo);
  }

  /** Packets counted so far: total, and per backend address (in the topology's order). */
  read(): { packets: number; bytes: number; perBackend: number[] } {
    const one = (key: number): [number, number] => {
      const b = this.dp.perCpuSum('sink_count', u32(key));
      return b ? [Number(b.readBigUInt64LE(0)), Number(b.readBigUInt64LE(8))] : [0, 0];
    };
    const [packets, bytes] = one(256);
    return { packets, bytes, perBackend: this.topo.backends.map((a) => one(ipToU32(a) & 255)[0]) };
  }

  close(): void {
    try {
      this.dp.detachXdp(this.topo.sink.ifindex, 'native', this.topo.sink.nsPath);
    } finally {
      this.dp.close();
    }
  }
}
