// What the Redis codec tells the per-request roles about each command (codec.ts CallScope).
import { RedisCodec } from "../../../assembly/codecs/redis";
import { Metadata } from "../../../assembly/core/metadata";
import { CallScope, BatchAnswer } from "../../../assembly/core/codec";

function command(text: string): Metadata {
  const c = new RedisCodec();
  const b = Uint8Array.wrap(String.UTF8.encode(text));
  const m = new Metadata();
  expect(c.decode(b, m)).toBe(true);
  return m;
}

function ascii(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

describe("redis in per-request mode", () => {
  it("sees MULTI, EXEC and DISCARD as a batch", () => {
    const c = new RedisCodec();
    expect(c.callScope(command("MULTI\r\n"))).toBe(CallScope.BeginBatch);
    expect(c.callScope(command("*1\r\n$4\r\nexec\r\n"))).toBe(CallScope.CommitBatch);
    expect(c.callScope(command("DISCARD\r\n"))).toBe(CallScope.DiscardBatch);
    expect(c.callScope(command("GET a\r\n"))).toBe(CallScope.Call);
  });

  it("sees AUTH, HELLO, SELECT and CLIENT SETNAME as session state, in replay order", () => {
    const c = new RedisCodec();
    const auth = command("AUTH secret\r\n");
    const hello = command("HELLO 3\r\n");
    const select = command("SELECT 3\r\n");
    const name = command("CLIENT SETNAME app\r\n");
    expect(c.callScope(auth)).toBe(CallScope.Session);
    expect(c.callScope(hello)).toBe(CallScope.Session);
    expect(c.callScope(select)).toBe(CallScope.Session);
    expect(c.callScope(name)).toBe(CallScope.Session);
    expect(c.callScope(command("CLIENT INFO\r\n"))).toBe(CallScope.Call);
    expect(c.sessionSlot(auth)).toBe(0);
    expect(c.sessionSlot(hello)).toBe(1);
    expect(c.sessionSlot(select)).toBe(2);
    expect(c.sessionSlot(name)).toBe(3);
  });

  it("refuses WATCH, UNWATCH and RESET with a reason", () => {
    const c = new RedisCodec();
    expect(c.perRequestRefusal(command("WATCH k\r\n"))!.includes("WATCH is not supported in per-request mode")).toBe(true);
    expect(c.perRequestRefusal(command("UNWATCH\r\n"))!.includes("UNWATCH is not supported")).toBe(true);
    expect(c.perRequestRefusal(command("RESET\r\n"))!.includes("RESET is not supported")).toBe(true);
    expect(c.perRequestRefusal(command("GET a\r\n"))).toBeNull();
  });

  it("answers batches as Redis does", () => {
    const c = new RedisCodec();
    expect(ascii(c.batchAnswer(BatchAnswer.Ok))).toBe("+OK\r\n");
    expect(ascii(c.batchAnswer(BatchAnswer.Queued))).toBe("+QUEUED\r\n");
    expect(ascii(c.batchAnswer(BatchAnswer.Aborted))).toBe("-EXECABORT Transaction discarded because of previous errors.\r\n");
    expect(ascii(c.sessionReset()!)).toBe("*1\r\n$5\r\nRESET\r\n");
  });
});

describe("CLIENT REPLY", () => {
  it("refuses OFF and SKIP sent as an array, as redis-py, ioredis and redis-cli send them", () => {
    for (let i = 0; i < 2; i++) {
      const mode = i == 0 ? "OFF" : "skip";
      const c = new RedisCodec();
      const b = Uint8Array.wrap(String.UTF8.encode("*3\r\n$6\r\nclient\r\n$5\r\nREPLY\r\n$" + mode.length.toString() + "\r\n" + mode + "\r\n"));
      expect(c.decode(b, new Metadata())).toBe(false);
      expect(c.error).toBe("redis: CLIENT REPLY " + mode.toUpperCase() + " is not supported: commands would go unanswered");
    }
    const on = Uint8Array.wrap(String.UTF8.encode("*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$2\r\nON\r\n"));
    expect(new RedisCodec().decode(on, new Metadata())).toBe(true);
  });
});
