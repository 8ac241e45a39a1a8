// The per-request client role's session state (roles/request-call.ts Session): what each call's
// x-meltemi-session header carries while session commands wait for their replies and after.
import { Session } from "../../../assembly/roles/request-call";
import { base64Decode } from "../../../assembly/util/base64";

function frame(text: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(text));
}

/** The frames the header carries, as text. */
function carried(s: Session): string {
  if (s.value.length == 0) return "";
  const b = base64Decode(s.value)!;
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

const SELECT = 2;
const AUTH = 0;

describe("per-request session state", () => {
  it("carries a session command from when it is sent, and keeps it when its reply says it took", () => {
    const s = new Session();
    const sel5 = s.propose(SELECT, frame("SELECT 5\r\n"));
    expect(carried(s)).toBe("SELECT 5\r\n", "the calls sent after it run in database 5 already");
    s.settle(sel5, true);
    expect(carried(s)).toBe("SELECT 5\r\n");
  });

  it("a refused one leaves the state as it was, and while it waits it is replayed after it", () => {
    const s = new Session();
    s.settle(s.propose(SELECT, frame("SELECT 5\r\n")), true);
    const sel99 = s.propose(SELECT, frame("SELECT 99\r\n"));
    // Replayed in order, the refused SELECT 99 leaves the server connection in database 5.
    expect(carried(s)).toBe("SELECT 5\r\nSELECT 99\r\n");
    s.settle(sel99, false);
    expect(carried(s)).toBe("SELECT 5\r\n");
  });

  it("one that took replaces what was proposed before it; a later refusal of an earlier one changes nothing", () => {
    const s = new Session();
    const a = s.propose(SELECT, frame("SELECT 1\r\n"));
    const b = s.propose(SELECT, frame("SELECT 2\r\n"));
    s.settle(b, true);
    expect(carried(s)).toBe("SELECT 2\r\n");
    s.settle(a, false);
    expect(carried(s)).toBe("SELECT 2\r\n");
  });

  it("of two that took, the one the client sent later stays, whichever reply came first", () => {
    // SELECT 1 and SELECT 2 went to different servers; SELECT 2's reply came first.
    const s = new Session();
    const a = s.propose(SELECT, frame("SELECT 1\r\n"));
    const b = s.propose(SELECT, frame("SELECT 2\r\n"));
    s.settle(b, true);
    s.settle(a, true);
    expect(carried(s)).toBe("SELECT 2\r\n");
  });

  it("a frame no longer replayed (too many waiting) still becomes the state when it took", () => {
    const s = new Session();
    const first = s.propose(SELECT, frame("SELECT 9\r\n"));
    for (let i = 0; i < 4; i++) s.propose(AUTH, frame("AUTH x\r\n"));
    for (let i = 0; i < 4; i++) s.propose(SELECT, frame("SELECT 1\r\n"));
    expect(carried(s).indexOf("SELECT 9")).toBe(-1, "dropped from the replay");
    s.settle(first, true);
    expect(carried(s).indexOf("SELECT 9\r\nSELECT 1")).toBeGreaterThan(-1, "the state, then the four still waiting");
  });

  it("keeps slots apart and in replay order (AUTH before SELECT)", () => {
    const s = new Session();
    s.settle(s.propose(SELECT, frame("SELECT 3\r\n")), true);
    s.settle(s.propose(AUTH, frame("AUTH pw\r\n")), true);
    expect(carried(s)).toBe("AUTH pw\r\nSELECT 3\r\n");
    s.settle(s.propose(AUTH, frame("AUTH wrong\r\n")), false);
    expect(carried(s)).toBe("AUTH pw\r\nSELECT 3\r\n");
  });

  it("bounds the frames waiting per slot", () => {
    const s = new Session();
    for (let i = 0; i < 100; i++) s.propose(SELECT, frame("SELECT " + (i % 16).toString() + "\r\n"));
    expect(carried(s).split("\r\n").length - 1).toBe(4);
  });
});
