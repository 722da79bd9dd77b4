import { useEffect, useState } from 'preact/hooks'

/** The console's place, from the URL's fragment: `#/devices/dv_1` → ['devices', 'dv_1']. */
export function useRoute (): string[] {
  const read = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent)
  const [parts, setParts] = useState(read)
  useEffect(() => {
    const f = () => setParts(read())
    addEventListener('hashchange', f)
    return () => removeEventListener('hashchange', f)
  }, [])
  return parts
}

export const href = (...parts: string[]) => `#/${parts.map(encodeURIComponent).join('/')}`
