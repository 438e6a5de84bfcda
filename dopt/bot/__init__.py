"""Keep a repository's Dockerfiles optimized with pull requests (GitHub) or merge requests (GitLab).

``run_bot`` clones a repository, applies dopt's fixes to every Dockerfile, and proposes the result
on a branch of its own, explaining each change. It is meant to run unattended (on a schedule, in
CI): it updates its one pull request instead of opening new ones, does nothing when there is
nothing to fix, and never overwrites a branch someone else has pushed to.
"""

from __future__ import annotations

from dopt.bot.runner import DEFAULT_BRANCH, EXIT_ERROR, EXIT_OK, EXIT_REFUSED, BotError, run_bot

__all__ = ["DEFAULT_BRANCH", "EXIT_ERROR", "EXIT_OK", "EXIT_REFUSED", "BotError", "run_bot"]
