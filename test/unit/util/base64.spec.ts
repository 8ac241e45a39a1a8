import { base64Encode, base64Decode } from "../../../assembly/util/base64";
import { bytes, hexOf } from "../bytes";

describe("base64", () => {
  it("encodes the RFC 4648 test vectors", () => {
    expect(base64Encode(bytes(""))).toBe("");
    expect(base64Encode(bytes("66"))).toBe("Zg==");
    expect(base64Encode(bytes("666f"))).toBe("Zm8=");
    expect(base64Encode(bytes("666f6f"))).toBe("Zm9v");
    expect(base64Encode(bytes("666f6f626172"))).toBe("Zm9vYmFy");
    expect(base64Encode(bytes("fbff00"))).toBe("+/8A");
  });

  it("decodes what it encodes", () => {
    expect(hexOf(base64Decode("Zm9vYmE=")!)).toBe("666f6f6261");
    expect(hexOf(base64Decode("Zg==")!)).toBe("66");
    expect(hexOf(base64Decode("+/8A")!)).toBe("fbff00");
    expect(base64Decode("")!.length).toBe(0);
  });

  it("round-trips a large frame", () => {
    const data = new Uint8Array(100001);
    for (let i = 0; i < data.length; i++) data[i] = <u8>(i * 7);
    const text = base64Encode(data);
    expect(text.length).toBe(133336);
    const back = base64Decode(text)!;
    expect(back.length).toBe(data.length);
    let same = true;
    for (let i = 0; i < data.length; i++) same = same && back[i] == data[i];
    expect(same).toBe(true);
  });

  it("refuses text that is not padded base64", () => {
    expect(base64Decode("Zm9")).toBeNull();
    expect(base64Decode("Zm9*")).toBeNull();
    expect(base64Decode("Z===")).toBeNull();
  });
});
