import type { Location } from './rule.js'

const DAY_MS = 86_400_000
const J2000 = 2_451_545
const UNIX_EPOCH_JD = 2_440_587.5
const rad = Math.PI / 180

/** Sunrise and sunset of one day; null when the sun stays up (`polar: 'day'`) or down (`polar: 'night'`). */
export interface SunTimes { sunrise: Date | null, sunset: Date | null, polar: 'day' | 'night' | null }

/**
 * Sunrise and sunset around solar noon of the UTC day holding `day`, by the
 * sunrise equation (mean anomaly, equation of centre, ecliptic longitude,
 * declination, hour angle at -0.833°: refraction and the sun's radius).
 * Within a minute or two of almanac values below the polar circles; good
 * enough for turning on a lamp.
 */
export function sunTimes (day: Date, location: Location): SunTimes {
  const n = Math.floor(day.getTime() / DAY_MS) + UNIX_EPOCH_JD + 0.5 - J2000
  const meanNoon = n - location.longitude / 360
  const anomaly = (357.5291 + 0.98560028 * meanNoon) % 360
  const m = anomaly * rad
  const centre = 1.9148 * Math.sin(m) + 0.02 * Math.sin(2 * m) + 0.0003 * Math.sin(3 * m)
  const lambda = ((anomaly + centre + 180 + 102.9372) % 360) * rad
  const transit = J2000 + meanNoon + 0.0053 * Math.sin(m) - 0.0069 * Math.sin(2 * lambda)
  const sinDecl = Math.sin(lambda) * Math.sin(23.4397 * rad)
  const cosDecl = Math.cos(Math.asin(sinDecl))
  const lat = location.latitude * rad
  const cosHour = (Math.sin(-0.833 * rad) - Math.sin(lat) * sinDecl) / (Math.cos(lat) * cosDecl)
  if (cosHour > 1) return { sunrise: null, sunset: null, polar: 'night' }
  if (cosHour < -1) return { sunrise: null, sunset: null, polar: 'day' }
  const halfDay = Math.acos(cosHour) / rad / 360
  const toDate = (jd: number) => new Date(Math.round((jd - UNIX_EPOCH_JD) * DAY_MS))
  return { sunrise: toDate(transit - halfDay), sunset: toDate(transit + halfDay), polar: null }
}

/** The first sunrise or sunset, shifted by `offsetMinutes`, strictly after `after`; null if none within 400 days (a polar location). */
export function nextSunEvent (event: 'sunrise' | 'sunset', offsetMinutes: number, location: Location, after: Date): Date | null {
  const start = after.getTime() - 2 * DAY_MS
  for (let d = 0; d < 400; d++) {
    const at = sunTimes(new Date(start + d * DAY_MS), location)[event]
    if (at && at.getTime() + offsetMinutes * 60_000 > after.getTime()) return new Date(at.getTime() + offsetMinutes * 60_000)
  }
  return null
}

/** Whether the sun is up at `at` (above -0.833°, as sunrise and sunset are reckoned). */
export function sunIsUp (at: Date, location: Location): boolean {
  for (const offset of [-1, 0, 1]) {
    const t = sunTimes(new Date(at.getTime() + offset * DAY_MS), location)
    if (t.polar !== null) {
      if (offset === 0) return t.polar === 'day'
      continue
    }
    if (t.sunrise!.getTime() <= at.getTime() && at.getTime() < t.sunset!.getTime()) return true
  }
  return false
}
