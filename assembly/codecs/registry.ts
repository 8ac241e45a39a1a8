// Every protocol Meltemi speaks: adding one is a codec file and one line here.
import { CodecFactory } from "../core/codec";
import { ThriftCodecFactory } from "./thrift";
import { DubboCodecFactory } from "./dubbo";
import { RedisCodecFactory } from "./redis";

export const CODECS: CodecFactory[] = [
  new ThriftCodecFactory(),
  new DubboCodecFactory(),
  new RedisCodecFactory(),
];

export function findCodec(name: string): CodecFactory | null {
  for (let i = 0; i < CODECS.length; i++) {
    if (unchecked(CODECS[i]).name() == name) return unchecked(CODECS[i]);
  }
  return null;
}

export function codecNames(): string {
  const names: string[] = [];
  for (let i = 0; i < CODECS.length; i++) names.push(unchecked(CODECS[i]).name());
  return names.join(", ");
}
