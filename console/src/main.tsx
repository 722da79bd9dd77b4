import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { ApiProblem, call, useCsrf, type Session } from './api.js'
import { useLiveStream } from './live.js'
import { publish } from './live-bus.js'
import { href, useRoute } from './route.js'
import { SignIn } from './views/signin.js'
import { Devices } from './views/devices.js'
import { DevicePage } from './views/device.js'
import { Schedules } from './views/schedules.js'
import { Models, ModelPage } from './views/models.js'
import { Fleet } from './views/fleet.js'
import { Problem } from './ui.js'

function App () {
  const [session, setSession] = useState<Session | null | undefined>(undefined)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    call<Session>('GET', '/v1/console/session').then((s) => { useCsrf(s.csrf); setSession(s) }, (err) => {
      if (!(err instanceof ApiProblem && err.status === 401)) setError(err)
      setSession(null)
    })
  }, [])
  const signedIn = (s: Session) => { useCsrf(s.csrf); setSession(s); location.hash = '#/' }
  const signOut = async () => {
    try { await call('DELETE', '/v1/console/session') } catch (err) { setError(err) }
    useCsrf(null)
    setSession(null)
  }
  if (session === undefined) return <p class="boot">Loading…</p>
  if (session === null) return <main class="page"><Problem error={error} /><SignIn onSignedIn={signedIn} /></main>
  return <Shell session={session} onSignOut={signOut} />
}

function Shell ({ session, onSignOut }: { session: Session, onSignOut: () => void }) {
  const route = useRoute()
  const owner = session.scope === 'owner'
  const live = useLiveStream(owner, publish)
  const links = owner
    ? [['Devices', href()], ['Schedules', href('schedules')]]
    : [['Models', href()], ['Fleet', href('fleet')]]
  let view
  if (owner) {
    if (route[0] === 'devices' && route[1]) view = <DevicePage id={route[1]} />
    else if (route[0] === 'schedules') view = <Schedules />
    else view = <Devices />
  } else {
    if (route[0] === 'models' && route[1]) view = <ModelPage id={route[1]} />
    else if (route[0] === 'fleet') view = <Fleet />
    else view = <Models />
  }
  return (
    <>
      <header class="bar">
        <a class="brand" href={href()}>Trellis</a>
        <nav aria-label="Main">
          {links.map(([label, to]) => <a href={to} aria-current={location.hash === to || (to === '#/' && !location.hash) ? 'page' : undefined}>{label}</a>)}
        </nav>
        <span class="who">
          {owner && <span class={`live ${live}`} title="Live updates" data-live={live}>{live === 'live' ? 'live' : live}</span>}
          <span class="scope">{session.scope}</span>
          <button type="button" onClick={onSignOut}>Sign out</button>
        </span>
      </header>
      <main class="page">{view}</main>
    </>
  )
}

render(<App />, document.getElementById('app')!)
