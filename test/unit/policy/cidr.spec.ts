import { parseCidr, parseIp } from "../../../assembly/policy/cidr";

function ip(s: string): Uint8Array {
  const a = parseIp(s);
  expect(a).not.toBeNull("parses " + s);
  return a!;
}

function inRange(cidr: string, addr: string): bool {
  const c = parseCidr(cidr);
  expect(c).not.toBeNull("parses " + cidr);
  return c!.contains(ip(addr));
}

describe("cidr: addresses", () => {
  it("reads IPv4 as IPv4-mapped IPv6", () => {
    const a = ip("10.1.2.3");
    expect(a.length).toBe(16);
    for (let i = 0; i < 10; i++) expect(a[i]).toBe(0);
    expect(a[10]).toBe(0xff);
    expect(a[11]).toBe(0xff);
    expect(a[12]).toBe(10);
    expect(a[15]).toBe(3);
  });

  it("reads Envoy's source.address forms with ports", () => {
    expect(ip("127.0.0.1:5678")[15]).toBe(1);
    expect(ip("[::1]:5678")[15]).toBe(1);
    expect(ip("[2001:db8::7]:80")[0]).toBe(0x20);
  });

  it("reads a dual-stack listener's IPv4 clients (::ffff:a.b.c.d) as the IPv4 address", () => {
    const mapped = ip("[::ffff:127.0.0.1]:5678");
    const plain = ip("127.0.0.1");
    for (let i = 0; i < 16; i++) expect(mapped[i]).toBe(plain[i]);
    expect(inRange("127.0.0.0/8", "[::ffff:127.0.0.1]:40000")).toBe(true);
    expect(parseIp("::ffff:127.0.0.300")).toBeNull();
  });

  it("reads IPv6 with and without ::", () => {
    const a = ip("2001:db8:0:0:0:0:0:1");
    const b = ip("2001:db8::1");
    for (let i = 0; i < 16; i++) expect(a[i]).toBe(b[i]);
    expect(b[1]).toBe(0x01);
    expect(b[3]).toBe(0xb8);
    expect(ip("::")[15]).toBe(0);
    expect(ip("fe80::")[0]).toBe(0xfe);
    expect(ip("ABCD::")[1]).toBe(0xcd);
  });

  it("rejects malformed addresses", () => {
    expect(parseIp("")).toBeNull();
    expect(parseIp("10.0.0")).toBeNull();
    expect(parseIp("10.0.0.256")).toBeNull();
    expect(parseIp("10.0.0.1.2")).toBeNull();
    expect(parseIp("10.0.-1.0")).toBeNull();
    expect(parseIp("a.b.c.d")).toBeNull();
    expect(parseIp("1::2::3")).toBeNull();
    expect(parseIp(":::")).toBeNull();
    expect(parseIp("1:2:3:4:5:6:7:8:9")).toBeNull();
    expect(parseIp("1:2:3:4:5:6:7")).toBeNull();
    expect(parseIp("12345::")).toBeNull();
    expect(parseIp("g::")).toBeNull();
    expect(parseIp("[::1")).toBeNull();
  });
});

describe("cidr: ranges", () => {
  it("contains addresses inside an IPv4 range and not outside", () => {
    expect(inRange("10.0.0.0/8", "10.255.0.1")).toBe(true);
    expect(inRange("10.0.0.0/8", "11.0.0.1")).toBe(false);
    expect(inRange("192.168.1.0/24", "192.168.1.77")).toBe(true);
    expect(inRange("192.168.1.0/24", "192.168.2.77")).toBe(false);
    expect(inRange("127.0.0.0/8", "127.0.0.1:40000")).toBe(true);
  });

  it("masks inside a byte", () => {
    expect(inRange("172.16.0.0/12", "172.31.255.255")).toBe(true);
    expect(inRange("172.16.0.0/12", "172.32.0.0")).toBe(false);
    expect(inRange("10.0.0.128/25", "10.0.0.200")).toBe(true);
    expect(inRange("10.0.0.128/25", "10.0.0.127")).toBe(false);
  });

  it("treats a bare address as a single host", () => {
    expect(inRange("10.0.0.1", "10.0.0.1")).toBe(true);
    expect(inRange("10.0.0.1", "10.0.0.2")).toBe(false);
    expect(inRange("::1", "[::1]:9")).toBe(true);
    expect(inRange("::1", "::2")).toBe(false);
  });

  it("contains addresses inside an IPv6 range and not outside", () => {
    expect(inRange("2001:db8::/32", "2001:db8:ffff::1")).toBe(true);
    expect(inRange("2001:db8::/32", "2001:db9::1")).toBe(false);
    expect(inRange("::1/128", "::1")).toBe(true);
  });

  it("keeps the families apart: an IPv4 /0 holds every IPv4 address and no IPv6 one", () => {
    expect(inRange("0.0.0.0/0", "203.0.113.9")).toBe(true);
    expect(inRange("0.0.0.0/0", "2001:db8::1")).toBe(false);
    expect(inRange("::/0", "2001:db8::1")).toBe(true);
    expect(inRange("::/0", "203.0.113.9")).toBe(true, "::/0 is every address");
    expect(inRange("2001:db8::/32", "32.1.13.184")).toBe(false, "the IPv4 address with the same bytes");
  });

  it("reads the prefix in the family the range is written in", () => {
    // IPv4-mapped IPv6 notation: the prefix counts IPv6 bits, so /104 is IPv4's /8.
    expect(inRange("::ffff:a00:0/104", "10.1.2.3")).toBe(true);
    expect(inRange("::ffff:a00:0/104", "11.1.2.3")).toBe(false);
    expect(inRange("::ffff:a00:1", "10.0.0.1")).toBe(true);
    expect(inRange("::ffff:0:0/96", "192.0.2.1")).toBe(true);
    expect(inRange("::ffff:0:0/96", "2001:db8::1")).toBe(false);
  });

  it("rejects malformed ranges", () => {
    expect(parseCidr("10.0.0.0/33")).toBeNull();
    expect(parseCidr("::/129")).toBeNull();
    expect(parseCidr("10.0.0.0/")).toBeNull();
    expect(parseCidr("10.0.0.0/-1")).toBeNull();
    expect(parseCidr("10.0.0.0/8/8")).toBeNull();
    expect(parseCidr("10.0.0.0/x")).toBeNull();
    expect(parseCidr("10.0.0/8")).toBeNull();
    expect(parseCidr("/8")).toBeNull();
    expect(parseCidr("")).toBeNull();
    expect(parseCidr("localhost")).toBeNull();
  });

  it("refuses socket addresses: a rule cannot restrict ports", () => {
    expect(parseCidr("10.0.0.1:80")).toBeNull();
    expect(parseCidr("10.0.0.0:80/8")).toBeNull();
    expect(parseCidr("[::1]:80")).toBeNull();
    expect(parseCidr("[::1]")).toBeNull();
  });
});
