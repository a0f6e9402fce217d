import { describe, expect, it } from "vitest";
import { addressKind, canonicalAddress, isLoopback, unmap } from "../../src/util/address.js";

describe("addresses, however they are spelled", () => {
  it("canonicalizes every spelling of one address to one text", () => {
    for (const t of ["::1", "[0:0:0:0:0:0:0:1]", "0000:0000:0000:0000:0000:0000:0000:0001", "::0:1"]) expect(canonicalAddress(t)).toBe("::1");
    for (const t of ["127.0.0.1", "::ffff:127.0.0.1", "[::ffff:7f00:1]", "0:0:0:0:0:ffff:7f00:0001"]) expect(canonicalAddress(t)).toBe("127.0.0.1");
    expect(canonicalAddress("2001:DB8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1");
    expect(canonicalAddress("fe80::1%eth0")).toBe("fe80::1");
    expect(canonicalAddress("127.000.000.001")).toBeUndefined();
    expect(canonicalAddress("example.org")).toBeUndefined();
  });
  it("names the kinds a guard must refuse", () => {
    expect(["[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "127.8.9.10"].map(addressKind)).toEqual(["loopback", "loopback", "loopback", "loopback"]);
    expect(["10.1.2.3", "172.31.0.1", "192.168.1.1", "100.64.0.1", "fd00::1"].map(addressKind)).toEqual(Array(5).fill("private"));
    expect(["169.254.169.254", "fe80::1"].map(addressKind)).toEqual(["link-local", "link-local"]);
    expect(["0.0.0.0", "::"].map(addressKind)).toEqual(["unspecified", "unspecified"]);
    expect(["224.0.0.1", "ff02::1"].map(addressKind)).toEqual(["multicast", "multicast"]);
    expect(["198.18.0.1", "198.19.255.1", "2001:db8:19::1"].map(addressKind)).toEqual(["lab", "lab", "lab"]);
    expect(addressKind("93.184.216.34")).toBe("public");
    expect(isLoopback("::ffff:127.0.0.1")).toBe(true);
    expect(unmap("::ffff:198.18.0.2")).toBe("198.18.0.2");
  });
});
