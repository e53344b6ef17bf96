// Carries ?next= into the form and shows ?error= (the server redirects here with them).
const params = new URLSearchParams(location.search);
const next = params.get('next');
const nextInput = document.getElementById('next') as HTMLInputElement | null;
if (next && nextInput) nextInput.value = next;
if (params.get('error')) document.getElementById('error')?.removeAttribute('hidden');
