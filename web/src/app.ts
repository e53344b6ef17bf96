import { cohortsPage } from './page-cohorts.js';
import { peersPage } from './page-peers.js';
import { runPage } from './page-run.js';
import { trendsPage } from './page-trends.js';

/** The dashboard's router: the server serves index.html for every page path; this picks the page. */

const themeKey = 'taskshard.theme';

function applyTheme(theme: string | null): void {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function setUpTheme(): void {
  applyTheme(localStorage.getItem(themeKey));
  document.getElementById('theme')?.addEventListener('click', () => {
    const dark = document.documentElement.dataset.theme === 'dark' || (!document.documentElement.dataset.theme && matchMedia('(prefers-color-scheme: dark)').matches);
    const next = dark ? 'light' : 'dark';
    localStorage.setItem(themeKey, next);
    applyTheme(next);
  });
}

function route(): void {
  const root = document.getElementById('app')!;
  const path = location.pathname;
  const run = /^\/cohorts\/([^/]+)$/.exec(path);
  const nav = run || path === '/' || path === '/cohorts' ? 'cohorts' : path.slice(1);
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.getAttribute('data-nav') === nav);
  if (run) {
    const id = decodeURIComponent(run[1]!);
    document.title = `taskshard · ${id}`;
    runPage(root, id);
  } else if (path === '/peers') peersPage(root);
  else if (path === '/trends') trendsPage(root);
  else cohortsPage(root);
}

setUpTheme();
route();
