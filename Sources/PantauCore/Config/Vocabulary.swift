/// The quantities and units profiles may use, so a typo is caught at validation, not in the command center.
public enum Vocabulary {
    public static let quantities: Set<String> = [
        "pm2_5", "pm10", "pm1", "co", "no2", "so2", "o3", "hc", "no", "h2s", "nh3", "co2", "tvoc", "temperature",
        "relative_humidity", "pressure", "water_level", "distance", "rain", "rain_tips", "rain_intensity",
        "wind_speed", "wind_direction", "illuminance", "noise", "status", "unit_code", "decimals", "voltage",
        "current", "counter",
        // An ASCII identifier read as a string (serial number, model, firmware version): `type: string` only.
        "identifier",
    ]

    public static let units: Set<String> = [
        "ug/m3", "mg/m3", "ppb", "ppm", "Cel", "%RH", "hPa", "Pa", "kPa", "m", "cm", "mm", "mm/h", "m/s", "deg",
        "lx", "dB", "V", "mA", "count", "1", "",
    ]
}
