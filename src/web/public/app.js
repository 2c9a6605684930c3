import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, describeError, session } from './api.js';
import { html, Notice } from './ui.js';
import { SalesList, SalePage, CartPage } from './shop.js';
import { OrdersPage, OrderPage, NotificationsPage } from './orders.js';
import { MerchantPage } from './merchant.js';
import { OpsPage } from './ops.js';

function useHash() {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const onChange = () => {
      setHash(location.hash || '#/');
      window.scrollTo(0, 0);
    };
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

function useSession() {
  const [value, setValue] = useState(session.get());
  useEffect(() => session.subscribe(setValue), []);
  return value;
}

function SignIn({ mode }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState();
  const [busy, setBusy] = useState(false);
  const signUp = mode === 'signup';
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      if (signUp) await api('POST', '/v1/auth/register', { body: { email, password } });
      const { token, user, shop } = await api('POST', '/v1/auth/login', { body: { email, password } });
      session.set({ token, user, shop });
      const back = sessionStorage.getItem('flashsale.after-signin');
      sessionStorage.removeItem('flashsale.after-signin');
      location.hash = back ?? (user.role === 'admin' ? '#/ops' : user.role === 'merchant' ? '#/merchant' : '#/');
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }
  return html`
    <h1>${signUp ? 'Create your account' : 'Sign in'}</h1>
    <form class="stack" onSubmit=${submit} aria-describedby="signin-error">
      <label>Email<input type="email" name="email" autocomplete="email" required value=${email} onInput=${(e) => setEmail(e.currentTarget.value)} /></label>
      <label>Password${signUp ? ' (at least 8 characters)' : ''}<input type="password" name="password" autocomplete=${signUp ? 'new-password' : 'current-password'} minlength=${signUp ? 8 : undefined} required value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} /></label>
      <div id="signin-error"><${Notice} kind="error">${error}<//></div>
      <div class="row">
        <button type="submit" disabled=${busy}>${signUp ? 'Sign up' : 'Sign in'}</button>
        ${signUp ? html`<a href="#/signin">I have an account</a>` : html`<a href="#/signup">Create an account</a>`}
      </div>
    </form>`;
}

function Header({ me, hash }) {
  const role = me?.user.role;
  const link = (href, text) => html`<a href=${href} aria-current=${hash === href || (href !== '#/' && hash.startsWith(href)) ? 'page' : undefined}>${text}</a>`;
  return html`
    <header class="top">
      <a class="brand" href="#/">flash<span>sale</span></a>
      <nav aria-label="Main">
        ${link('#/', 'Sales')}
        ${role === 'buyer' ? html`${link('#/cart', 'Cart')}${link('#/orders', 'My orders')}${link('#/notifications', 'Inbox')}` : null}
        ${role === 'merchant' ? link('#/merchant', 'My shop') : null}
        ${role === 'admin' ? link('#/ops', 'Operations') : null}
      </nav>
      ${me
        ? html`<span class="who">${me.user.email} (${role})</span> <button class="secondary" onClick=${() => { session.set(null); location.hash = '#/'; }}>Sign out</button>`
        : html`${link('#/signin', 'Sign in')} ${link('#/signup', 'Sign up')}`}
    </header>`;
}

function NeedsRole({ me, role, children }) {
  if (me?.user.role === role) return children;
  return html`<h1>Sign in first</h1><${Notice}>This page is for ${role === 'admin' ? 'operators' : role + 's'}. <a href="#/signin" onClick=${() => sessionStorage.setItem('flashsale.after-signin', location.hash)}>Sign in</a><//>`;
}

function App() {
  const hash = useHash();
  const me = useSession();
  const [path] = hash.slice(1).split('?');
  const parts = path.split('/').filter(Boolean);
  let page;
  if (parts.length === 0) page = html`<${SalesList} />`;
  else if (parts[0] === 'sales' && parts[1]) page = html`<${SalePage} id=${parts[1]} me=${me} />`;
  else if (parts[0] === 'signin') page = html`<${SignIn} mode="signin" />`;
  else if (parts[0] === 'signup') page = html`<${SignIn} mode="signup" />`;
  else if (parts[0] === 'cart') page = html`<${NeedsRole} me=${me} role="buyer"><${CartPage} /><//>`;
  else if (parts[0] === 'orders' && parts[1]) page = html`<${NeedsRole} me=${me} role="buyer"><${OrderPage} id=${parts[1]} /><//>`;
  else if (parts[0] === 'orders') page = html`<${NeedsRole} me=${me} role="buyer"><${OrdersPage} /><//>`;
  else if (parts[0] === 'notifications') page = html`<${NeedsRole} me=${me} role="buyer"><${NotificationsPage} /><//>`;
  else if (parts[0] === 'merchant') page = html`<${NeedsRole} me=${me} role="merchant"><${MerchantPage} me=${me} /><//>`;
  else if (parts[0] === 'ops') page = html`<${NeedsRole} me=${me} role="admin"><${OpsPage} /><//>`;
  else page = html`<h1>Not found</h1><p><a href="#/">Back to the sales</a></p>`;
  return html`<${Header} me=${me} hash=${'#' + path} /><main id="main">${page}</main>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
