"""The one trust boundary: everything that runs submitted code, and every point where data crosses it.

**Trusted**: the harness (this process), aipbench's own code, the protocol files, the artifact cache, and the
repository's reference submissions — recognised by their folders' SHA-256, never by name (``trust``): only
they may run in the harness's own process (``isolation="none"``). **Not trusted**: every other submission's
code (attacks, defenses, ranker submissions), everything it returns, and every results document made
elsewhere (checked at intake: ``aipbench.leaderboard.intake``).

**Where submitted code runs** (``process.Child``): a child process in a bubblewrap sandbox (``bwrap``) with
every capability dropped — in a user namespace of its own, or, when the harness runs as root (whose process
limit the kernel never enforces), as a user of its own that the child becomes before it imports anything
(``entry``); an allowlisted environment (``environment``), passed with bwrap's other arguments through a file
descriptor; a filesystem of the system's libraries, this Python and aipbench only, read-only, so no artifact
cache anywhere is visible, whatever links lead to it; no network; its own PID, IPC and UTS namespaces; resource
limits on memory, processes, open files, CPU time, file size, and two sized tmpfs mounts (``/tmp``, its home;
``/dev/shm``) as the only writable places (``limits``); killed with the harness and, with its whole process
group, at its time limit. ``--unsandboxed`` runs the same child as a plain process with the same environment
and limits (the user's own choice, recorded).

**Where data crosses** (harness → child, read-only): the submission's folder as a staged copy of exactly the
files its hash covers (``scratch.stage_folder``); an attack's context (``attack_run.pack``: harness-made
objects, the catalog by file); a defense's context fields (pickled harness objects, the catalog by file).
(child → harness): each message over the child's channel (``channel``) — length-prefixed, read before a
deadline (the time limit), refused beyond a size; an attack's images as a ``.npy`` parsed without pickles and
checked against the verified cooperative images (``harness.image_checks``); a black-box attack's oracle
queries, each answered with ranks only (``oracle_link``); a defense worker's JSON replies (NaN refused), its
images and scores through memory files the harness creates and seals (``defense_worker``), a trained ranker
as a tensors-only checkpoint size-checked before it is read and tensor-checked before a model is shaped by it
(``returns``), its fitted state as opaque bytes unpickled only in an adaptive attack's sandbox; stdout and
stderr through pipes, kept up to a cap; the exit status, mapped to the limit a child ran into (``limits``).
"""
