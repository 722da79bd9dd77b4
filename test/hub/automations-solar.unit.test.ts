import { describe, expect, it } from 'vitest'
import { nextSunEvent, sunIsUp, sunTimes } from '../../hub/src/automations/solar.js'

const minutesApart = (a: Date | null, iso: string) => Math.abs(a!.getTime() - Date.parse(iso)) / 60_000

// Almanac values (NOAA solar calculator, timeanddate.com), rounded to the minute.
const known = [
  { place: 'London, summer solstice', day: '2024-06-21T12:00:00Z', latitude: 51.5074, longitude: -0.1278, sunrise: '2024-06-21T03:43:00Z', sunset: '2024-06-21T20:21:00Z' },
  { place: 'New York, winter solstice', day: '2024-12-21T12:00:00Z', latitude: 40.7128, longitude: -74.006, sunrise: '2024-12-21T12:16:00Z', sunset: '2024-12-21T21:32:00Z' },
  { place: 'Berlin, March equinox', day: '2024-03-20T12:00:00Z', latitude: 52.52, longitude: 13.405, sunrise: '2024-03-20T05:07:00Z', sunset: '2024-03-20T17:19:00Z' },
  { place: 'Sydney, January', day: '2024-01-15T00:00:00Z', latitude: -33.8688, longitude: 151.2093, sunrise: '2024-01-14T19:00:00Z', sunset: '2024-01-15T09:09:00Z' },
]

describe('solar times', () => {
  it.each(known)('gives sunrise and sunset within 3 minutes of the almanac: $place', ({ day, latitude, longitude, sunrise, sunset }) => {
    const t = sunTimes(new Date(day), { latitude, longitude })
    expect(t.polar).toBeNull()
    expect(minutesApart(t.sunrise, sunrise)).toBeLessThan(3)
    expect(minutesApart(t.sunset, sunset)).toBeLessThan(3)
  })

  it('knows the polar night and the midnight sun in Tromsø', () => {
    const tromso = { latitude: 69.6492, longitude: 18.9553 }
    expect(sunTimes(new Date('2024-12-21T12:00:00Z'), tromso)).toEqual({ sunrise: null, sunset: null, polar: 'night' })
    expect(sunTimes(new Date('2024-06-21T12:00:00Z'), tromso)).toEqual({ sunrise: null, sunset: null, polar: 'day' })
    expect(sunIsUp(new Date('2024-06-21T00:00:00Z'), tromso)).toBe(true)
    expect(sunIsUp(new Date('2024-12-21T12:00:00Z'), tromso)).toBe(false)
  })

  it('finds the next sunset with an offset, after the one already past', () => {
    const london = { latitude: 51.5074, longitude: -0.1278 }
    // 22:00 UTC on the solstice: today's sunset (20:21) is past, so tomorrow's, 30 minutes early.
    const next = nextSunEvent('sunset', -30, london, new Date('2024-06-21T22:00:00Z'))
    expect(minutesApart(next, '2024-06-22T19:51:00Z')).toBeLessThan(3)
    // 20:00 UTC: the offset sunset (19:51) is past, tonight's sunset itself is not.
    expect(minutesApart(nextSunEvent('sunset', 0, london, new Date('2024-06-21T20:00:00Z')), '2024-06-21T20:21:00Z')).toBeLessThan(3)
  })

  it('tells whether the sun is up', () => {
    const berlin = { latitude: 52.52, longitude: 13.405 }
    expect(sunIsUp(new Date('2024-03-20T12:00:00Z'), berlin)).toBe(true)
    expect(sunIsUp(new Date('2024-03-20T04:30:00Z'), berlin)).toBe(false)
    expect(sunIsUp(new Date('2024-03-20T18:00:00Z'), berlin)).toBe(false)
  })
})
