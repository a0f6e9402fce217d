import { describe, expect, it } from "vitest";
import { formatInstant, isValidTimeZone, localTimeOfDay, parseClockTime, parseInstant, tzOffsetMinutes } from "../../src/util/time.js";
import { parseDuration, parseRate } from "../../src/util/duration.js";

describe("time zones", () => {
  it("knows Almaty was UTC+6 before 2024-03-01 and UTC+5 after, Aqtau UTC+5", () => {
    expect(tzOffsetMinutes("Asia/Almaty", Date.parse("2014-02-13T11:00:00Z"))).toBe(360);
    expect(tzOffsetMinutes("Asia/Almaty", Date.parse("2024-03-02T00:00:00Z"))).toBe(300);
    expect(tzOffsetMinutes("Asia/Aqtau", Date.parse("2011-12-16T06:00:00Z"))).toBe(300);
  });
  it("accepts fixed offsets and UTC, rejects unknown zones", () => {
    expect(tzOffsetMinutes("+06:00", 0)).toBe(360);
    expect(tzOffsetMinutes("-03:30", 0)).toBe(-210);
    expect(tzOffsetMinutes("UTC", 0)).toBe(0);
    expect(isValidTimeZone("Asia/Almaty")).toBe(true);
    expect(isValidTimeZone("Mars/Olympus")).toBe(false);
  });
  it("renders local time of day and weekday", () => {
    const t = Date.parse("2014-02-13T11:00:00Z"); // 17:00 in Almaty, a Thursday
    const l = localTimeOfDay("Asia/Almaty", t);
    expect(l.msOfDay).toBe(17 * 3_600_000);
    expect(l.weekday).toBe(4);
    expect(formatInstant(t, "Asia/Almaty")).toBe("2014-02-13T17:00:00+06:00");
    expect(formatInstant(t, "UTC")).toBe("2014-02-13T11:00:00Z");
  });
});

describe("parseInstant", () => {
  it("reads offsets, Z, and local time in a zone", () => {
    expect(parseInstant("2014-02-13T17:00:00+06:00")).toBe(Date.parse("2014-02-13T11:00:00Z"));
    expect(parseInstant("2014-02-13T17:00:00+0600")).toBe(Date.parse("2014-02-13T11:00:00Z"));
    expect(parseInstant("2014-02-13T11:00:00Z", "Asia/Almaty")).toBe(Date.parse("2014-02-13T11:00:00Z"));
    expect(parseInstant("2014-02-13T17:00", "Asia/Almaty")).toBe(Date.parse("2014-02-13T11:00:00Z"));
    expect(parseInstant("2011-12-16", "Asia/Aqtau")).toBe(Date.parse("2011-12-15T19:00:00Z"));
    expect(parseInstant("2025-06-01T12:00", "Asia/Almaty")).toBe(Date.parse("2025-06-01T07:00:00Z"));
  });
  it("rejects impossible dates", () => {
    for (const bad of ["2020-13-01", "2011-02-30", "2020-01-01T25:00", "yesterday", "2020-1-1"]) expect(parseInstant(bad)).toBeUndefined();
  });
  it("reads clock times", () => {
    expect(parseClockTime("20:00")).toBe(20 * 3_600_000);
    expect(parseClockTime("24:00")).toBe(24 * 3_600_000);
    expect(parseClockTime("24:01")).toBeUndefined();
    expect(parseClockTime("8pm")).toBeUndefined();
  });
});

describe("durations and rates", () => {
  it("parses durations", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration(2)).toBe(2000);
    expect(parseDuration("soon")).toBeUndefined();
  });
  it("parses rates in bytes per second", () => {
    expect(parseRate("64kbit")).toBe(8000);
    expect(parseRate("16KB/s")).toBe(16384);
    expect(parseRate(1000)).toBe(1000);
    expect(parseRate("fast")).toBeUndefined();
  });
});
